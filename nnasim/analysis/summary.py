"""The headline numbers of a compare or cascade report, as a few lines for the terminal."""

from __future__ import annotations

from typing import Any

import numpy as np


def compare_headline(result: dict[str, Any]) -> list[str]:
    """Per quantized configuration: output SQNR, the worst layer, saturations, the task's key figure."""
    lines = [f"{result['model']}: {result['images']} images, configurations {', '.join(result['configs'])}"]
    for label, outputs in result.get("outputs", {}).items():
        sqnr = ", ".join(f"{name} {entry['sqnr_db']:.1f} dB" for name, entry in outputs.items())
        parts = [f"output SQNR {sqnr}"]
        layers = result.get("layers", {}).get(label) or []
        if layers:
            parts.append(f"worst layer {layers[0]['tensor']} {layers[0]['sqnr_db']:.1f} dB")
        saturated = sum(result.get("engine", {}).get(label, {}).get("saturations", {}).values())
        parts.append(f"{saturated} saturated values")
        parts += _task_figures(result, label)
        lines.append(f"  {label}: " + "; ".join(parts))
    return lines


def _task_figures(result: dict[str, Any], label: str) -> list[str]:
    if "classify" in result:
        entry = result["classify"].get(label, {})
        return [f"top1 {entry.get('top1', float('nan')):.3f}", f"{entry.get('top1 changed', 0)} top-1 flips"]
    if "detect" in result:
        summary = result["detect"]["summary"].get(label, {})
        shown = {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        return [", ".join(f"{k} {_number(v)}" for k, v in list(shown.items())[:5])] if shown else []
    if "embed" in result:
        entry = result["embed"]["configs"].get(label, {})
        cosine = np.asarray(entry.get("cosine_to_fp32", []), float)
        figures = [f"{len(entry.get('decision_flips', []))} decision flips"]
        if cosine.size:
            figures.insert(0, f"cosine to fp32 min {cosine.min():.3f} mean {cosine.mean():.3f}")
        return figures
    return []


def cascade_headline(result: dict[str, Any]) -> list[str]:
    """The weakest link and each single quantized stage's changed decisions."""
    lines = [
        f"{result['detector']} -> {result['verifier']}: {result['images']} images, detector "
        f"{', '.join(result['detector_configs'])} x verifier {', '.join(result['verifier_configs'])}"
    ]
    weakest = result.get("grid", {}).get("weakest_link", {})
    if weakest.get("stage"):
        lines.append(
            f"  weakest link: the {weakest['stage']} at {weakest['config']} "
            f"({weakest['decisions_changed']} decisions changed, "
            f"cosine to fp32 {weakest['cos_to_fp32_mean']:.3f})"
        )
    lines += [f"  {cell}" for cell in weakest.get("single_stage_cells", [])]
    return lines


def _number(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
