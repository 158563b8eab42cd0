"""Self-speculative decoding with the MTP drafts vs plain greedy decoding on the toy language.

Trains the tiny model (seeded, one thread) with mtp="simple" and mtp="deepseek", decodes the same
prompts plainly and speculatively, and prints acceptance rate, tokens per forward pass, the wall-time
ratio speculative / plain (best of several rounds, measured in this run) and whether the outputs
were identical. No KV cache: each pass recomputes the sequence, so the time ratio is not the
speed-up a cached implementation would get.
"""

import time

import torch

from aptt_edu.speculative import generate_speculative
from aptt_edu.training import TrainConfig, train

torch.set_num_threads(1)
idx = torch.randint(0, 16, (8, 3), generator=torch.Generator().manual_seed(123))
N, ROUNDS = 28, 3
line = ""
for mtp in ("simple", "deepseek"):
    model = train(TrainConfig(steps=300, mtp=mtp, progress=False)).model  # type: ignore[arg-type]
    assert model is not None
    t_plain, t_spec = float("inf"), float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        # one row at a time, like generate_speculative, so the ratio compares like with like
        plain = torch.cat([model.generate(r[None], N, temperature=0) for r in idx])
        t1 = time.perf_counter()
        spec, st = generate_speculative(model, idx, N)
        t2 = time.perf_counter()
        t_plain, t_spec = min(t_plain, t1 - t0), min(t_spec, t2 - t1)
    lossless = bool(torch.equal(plain, spec))
    line = (
        f"acceptance_rate={st.acceptance_rate:.3f} tokens_per_forward={st.tokens_per_forward:.3f} "
        f"time_ratio={t_spec / t_plain:.3f} lossless={lossless}"
    )
    print(f"{mtp}: {line}")
print(f"speculative: {line}")
