r"""Two real processes on loopback (``gloo``, CPU): metrics and training agree with one process.

* :class:`~aptt_edu.loss.metrics.PerplexityMetric` and :class:`~aptt_edu.loss.metrics.TokenAccuracyMetric`
  all-reduce their sums in ``compute()``, so every rank reports the value over *all* ranks' data —
  the value one process gets from all the data.
* ``torchrun --nproc_per_node 2 -m aptt_edu --grad-accum 2`` trains with
  ``DistributedDataParallel`` and gives the same losses, gradient norms and validation metrics as
  one process on the same global batch (to float rounding); only rank 0 writes the output folder.

Each test starts fresh Python processes (import torch takes a few seconds each), on a free port of
127.0.0.1; the sizes are tiny so that the run itself takes about a second.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from aptt_edu.cli import main
from aptt_edu.distributed import all_reduce_sum, init_from_env, rank_and_world_size, shard
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss
from aptt_edu.loss.metrics import PerplexityMetric, TokenAccuracyMetric
from aptt_edu.training import History

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torch.distributed with the gloo backend",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_env(port: int | None = None) -> dict[str, str]:
    """Environment for ranks on this machine: loopback address, one thread, no GPU."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""}
    if port is not None:  # torchrun sets these itself from --master_addr / --master_port
        env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    if Path("/sys/class/net/lo").exists():  # gloo: use loopback even if the hostname resolves out
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return env


def test_helpers_without_a_process_group() -> None:
    """One plain process: rank 0 of 1, a sum over ranks is the value itself."""
    assert rank_and_world_size() == (0, 1)
    assert init_from_env() is False  # WORLD_SIZE unset (or 1): nothing to join
    t = torch.tensor([1.5, 2.0])
    assert all_reduce_sum(t) is t
    x = torch.arange(5)
    assert [shard(x, r, 2).tolist() for r in range(2)] == [[0, 1, 2], [3, 4]]


# The worker of the metrics test: each rank adds *its* half of the batches, then computes.
METRICS_WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    from aptt_edu.distributed import all_reduce_sum, init_from_env, rank_and_world_size
    from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss
    from aptt_edu.loss.metrics import PerplexityMetric, TokenAccuracyMetric

    assert init_from_env("gloo")
    rank, world = rank_and_world_size()
    batches = torch.load(sys.argv[1])
    ppl, acc = PerplexityMetric(), TokenAccuracyMetric(top_k=2)
    for logits, labels in batches[rank::world]:  # different numbers of tokens on each rank
        ppl.update(logits, labels)
        acc.update(logits, labels)
    local_tokens = int(ppl.token_count)
    first = (float(ppl.compute()), float(acc.compute()))
    second = (float(ppl.compute()), float(acc.compute()))  # compute() must not change the state
    fn = MultiTokenPredictionLoss(batches[0][0].shape[-1], mtp_depth=2)
    counts = sum(fn.count_items(labels) for _, labels in batches[rank::world])
    print(json.dumps({
        "rank": rank, "world": world, "ppl": first[0], "acc": first[1], "again": second,
        "local_tokens": local_tokens, "state_after": int(ppl.token_count),
        "counts": all_reduce_sum(counts).tolist(),
    }))
    torch.distributed.destroy_process_group()
    """
)


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Five batches with different shapes and amounts of padding."""
    g = torch.Generator().manual_seed(0)
    out = []
    for B, T, pad in [(2, 5, 0), (3, 9, 4), (1, 4, 3), (2, 7, 6), (4, 3, 1)]:
        logits = torch.randn(B, T, 13, generator=g) * 2  # (B, T, V)
        labels = torch.randint(0, 13, (B, T), generator=g)  # (B, T)
        labels[0, T - pad :] = -100
        out.append((logits, labels))
    return out


def test_metrics_all_reduce_over_two_processes(tmp_path: Path) -> None:
    batches = _batches()
    torch.save(batches, tmp_path / "batches.pt")
    (tmp_path / "worker.py").write_text(METRICS_WORKER, encoding="utf-8")
    env = loopback_env(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "batches.pt")],
            env={**env, "RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    # the reference: one process that sees every batch
    ppl, acc = PerplexityMetric(), TokenAccuracyMetric(top_k=2)
    for logits, labels in batches:
        ppl.update(logits, labels)
        acc.update(logits, labels)
    fn = MultiTokenPredictionLoss(13, mtp_depth=2)
    expected_counts = sum(fn.count_items(labels) for _, labels in batches)

    assert [r["rank"] for r in results] == [0, 1] and results[0]["world"] == 2
    assert results[0]["local_tokens"] != results[1]["local_tokens"]  # the ranks saw different data
    for r in results:
        assert r["ppl"] == pytest.approx(float(ppl.compute()), rel=1e-12)
        assert r["acc"] == pytest.approx(float(acc.compute()), rel=1e-12)
        assert tuple(r["again"]) == (r["ppl"], r["acc"])
        assert r["state_after"] == r["local_tokens"]  # the buffers keep the local sums
        assert r["counts"] == expected_counts.tolist()  # type: ignore[union-attr]


# Tiny run; batch 6 over 2 ranks of 3 rows, each split into micro-batches of 2 and 1 rows: the
# valid-token counts of the parts differ, so a per-part mean would not reproduce the one-process run.
RUN_FLAGS = [
    "--steps", "4", "--batch-size", "6", "--seq-len", "12", "--d-model", "16", "--n-layer", "1",
    "--n-head", "2", "--eval-every", "2", "--mtp", "simple", "--mtp-depth", "2",
    "--label-smoothing", "0.1", "--no-progress", "--threads", "1",
]  # fmt: skip


def test_torchrun_two_processes_match_one_process(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "aptt_edu", *RUN_FLAGS, "--grad-accum", "2", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=loopback_env(), timeout=240, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ddp = History.load(out / "history.json")
    assert ddp.world_size == 2 and ddp.config["grad_accum"] == 2
    assert result.stdout.count("wrote ") == 1  # rank 0 alone writes and reports the folder

    # the same global batches in one process: without and with gradient accumulation
    for accum in ("1", "3"):
        assert main([*RUN_FLAGS, "--grad-accum", accum, "--out", str(tmp_path / accum)]) == 0
        one = History.load(tmp_path / accum / "history.json")
        assert one.world_size == 1
        for series in ("train_loss", "main_loss", "grad_norm", "val_loss", "val_perplexity"):
            assert getattr(ddp, series) == pytest.approx(getattr(one, series), abs=1e-5), series
        assert ddp.mtp_loss == [pytest.approx(ls, abs=1e-5) for ls in one.mtp_loss]
        assert ddp.val_accuracy == pytest.approx(one.val_accuracy, abs=1e-9)

    # every rank reports the same global metrics (the metrics all-reduce their sums)
    ranks = {
        r: json.loads((out / f"final_rank{r}.json").read_text(encoding="utf-8")) for r in (0, 1)
    }
    assert ranks[0] == ranks[1]
    assert ranks[0]["val_loss"] == ddp.val_loss[-1]
    assert ranks[0]["val_perplexity"] == ddp.val_perplexity[-1]
    assert ranks[0]["val_accuracy"] == ddp.val_accuracy[-1]
    assert ranks[0]["train_loss"] == ddp.train_loss[-1]


def test_compare_is_refused_under_torchrun(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--out", "unused"])
    assert exc.value.code == 2
    assert "one process" in capsys.readouterr().err
