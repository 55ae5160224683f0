"""Long fuzz run: ``python -m fuzz.run --cases 100000 [--target all|model|profile|spec|array] [--seed S]``.

Prints how many mutated inputs loaded, were refused with nnasim's own error, or crashed
(anything else: a bug), and the seeds of the crashes so each can be replayed.
"""

from __future__ import annotations

import argparse
import platform
import random
import time
import traceback
from collections import Counter

from tqdm import tqdm

from fuzz import mutators, targets

TARGETS = ("model", "profile", "spec", "array")


def one_case(kind: str, rng: random.Random, seed_model, seed_bytes: bytes) -> str:
    """Mutate one input of ``kind`` and feed it to its target."""
    if kind == "model":
        data, side = mutators.mutate_model(rng, seed_model, seed_bytes)
        return targets.model_target(data, side=side)
    if kind == "profile":
        text = mutators.mutate_profile(rng) if rng.random() < 0.5 else mutators.mutate_profile_extreme(rng)
        return targets.profile_target(text)
    if kind == "spec":
        return targets.spec_target(mutators.mutate_spec(rng))
    return targets.array_target(*mutators.mutate_array(rng))


def run(cases: int, seed: int, target: str) -> Counter:
    outcome: Counter = Counter()
    crashes = []
    seed_model = mutators.seed_model()
    seed_bytes = seed_model.SerializeToString()
    for case in tqdm(range(cases), desc=f"fuzz {target}", mininterval=5):
        case_seed = seed * 1_000_003 + case
        rng = random.Random(case_seed)
        kind = TARGETS[case % len(TARGETS)] if target == "all" else target
        try:
            result = one_case(kind, rng, seed_model, seed_bytes)
            outcome[result] += 1
            outcome[f"{kind}:{result}"] += 1
        except Exception:  # a crash is what we count; keep going
            outcome["crash"] += 1
            crashes.append((case_seed, kind, traceback.format_exc(limit=3).splitlines()[-1]))
    for case_seed, kind, line in crashes[:20]:
        print(f"crash target={kind} seed={case_seed}: {line}")
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", choices=("all", *TARGETS), default="all")
    args = parser.parse_args()
    start = time.perf_counter()
    outcome = run(args.cases, args.seed, args.target)
    elapsed = time.perf_counter() - start
    print(
        f"target={args.target} cases={args.cases} seed={args.seed} ok={outcome['ok']} "
        f"nnasim_errors={outcome['error']} crashes={outcome['crash']} time={elapsed:.0f}s "
        f"per_target={ {k: v for k, v in sorted(outcome.items()) if ':' in k} } "
        f"machine={platform.machine()} python={platform.python_version()}"
    )


if __name__ == "__main__":
    main()
