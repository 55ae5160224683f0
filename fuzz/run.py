"""Long fuzz run: ``python -m fuzz.run --cases 100000 [--target model|profile] [--seed S]``.

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


def run(cases: int, seed: int, target: str) -> Counter:
    outcome: Counter = Counter()
    crashes = []
    seed_model = mutators.seed_model()
    seed_bytes = seed_model.SerializeToString()
    for case in tqdm(range(cases), desc=f"fuzz {target}", mininterval=5):
        case_seed = seed * 1_000_003 + case
        rng = random.Random(case_seed)
        try:
            if target == "model":
                result = targets.model_target(mutators.mutate(rng, seed_model, seed_bytes))
            else:
                result = targets.profile_target(mutators.mutate_profile(rng))
            outcome[result] += 1
        except Exception:  # a crash is what we count; keep going
            outcome["crash"] += 1
            crashes.append((case_seed, traceback.format_exc(limit=3).splitlines()[-1]))
    for case_seed, line in crashes[:20]:
        print(f"crash seed={case_seed}: {line}")
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", choices=("model", "profile"), default="model")
    args = parser.parse_args()
    start = time.perf_counter()
    outcome = run(args.cases, args.seed, args.target)
    elapsed = time.perf_counter() - start
    print(
        f"target={args.target} cases={args.cases} seed={args.seed} ok={outcome['ok']} "
        f"nnasim_errors={outcome['error']} crashes={outcome['crash']} time={elapsed:.0f}s "
        f"machine={platform.machine()} python={platform.python_version()}"
    )


if __name__ == "__main__":
    main()
