"""Face alignment for ArcFace-type embedders: 68 landmarks -> 5 points -> similarity -> 112x112 crop.

The embedders are trained on faces warped so that the eye centres, the nose tip and the mouth
corners land on insightface's fixed 112x112 template (``arcface_dst`` in insightface's
``face_align.py``). The warp is the similarity transform (rotation, uniform scale, translation)
that maps the five detected points onto the template with the least squared error. Written as
``u = a x - b y + tx, v = b x + a y + ty`` the problem is linear in ``(a, b, tx, ty)``, so numpy's
least squares solves it exactly; every matrix ``[[a, -b], [b, a]]`` is a scaled rotation, so this is
the same optimum as Umeyama's closed form (scikit-image's ``SimilarityTransform.estimate``, which
the project does not otherwise need). Pixels are resampled bilinearly by Pillow.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# insightface arcface_dst: left eye, right eye (as seen in the image), nose tip, left and right mouth corner
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
ALIGNED_SIZE = (112, 112)

# iBUG 68-point mark-up (0-based): 36-41 the eye on the image's left, 42-47 the other one,
# 30 the nose tip, 48 and 54 the mouth corners.
LEFT_EYE_68 = slice(36, 42)
RIGHT_EYE_68 = slice(42, 48)
NOSE_TIP_68 = 30
MOUTH_LEFT_68, MOUTH_RIGHT_68 = 48, 54


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """The 5 ArcFace points ``(5, 2)`` from 68 iBUG landmarks ``(68, 2)``: eye centres (mean of each
    eye's six points), nose tip, mouth corners."""
    points = np.asarray(landmarks68, np.float64).reshape(68, 2)
    return np.stack(
        [
            points[LEFT_EYE_68].mean(axis=0),
            points[RIGHT_EYE_68].mean(axis=0),
            points[NOSE_TIP_68],
            points[MOUTH_LEFT_68],
            points[MOUTH_RIGHT_68],
        ]
    )


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity matrix ``M`` minimising ``sum |M [x y 1]^T - target|^2`` over the points.

    Coordinates are in pixels with integer values at pixel centres (OpenCV's convention).
    """
    src = np.asarray(source, np.float64).reshape(-1, 2)
    dst = np.asarray(target, np.float64).reshape(-1, 2)
    x, y = src[:, 0], src[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    rows_u = np.stack([x, -y, ones, zeros], axis=1)
    rows_v = np.stack([y, x, zeros, ones], axis=1)
    design = np.concatenate([rows_u, rows_v])
    a, b, tx, ty = np.linalg.lstsq(design, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (H x W x C uint8) warped by the 2x3 ``matrix`` (source pixel -> output pixel, pixel
    centres at integers) into a ``size = (width, height)`` image, bilinear; outside is black."""
    forward = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    # Pillow puts pixel centres at +0.5: shift both sides into its continuous coordinates
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    unhalf = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(half @ forward @ unhalf)  # output -> input, as Pillow asks
    coefficients = tuple(float(v) for v in inverse[:2].ravel())
    warped = Image.fromarray(image).transform(size, Image.AFFINE, coefficients, Image.BILINEAR)
    return np.asarray(warped)


def align_face(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """The 112x112 ArcFace-aligned crop of the face whose 68 landmarks (image pixels) are given."""
    matrix = similarity_transform(five_points(landmarks68), ARCFACE_TEMPLATE_112)
    return warp_affine(image, matrix, ALIGNED_SIZE)
