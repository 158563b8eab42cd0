# %% [markdown] en
# # 05 · The memory of the LM head
#
# The output head is a single matrix product, $z = h W^\top$, but it is the widest one in the model:
# it produces $V$ numbers for every token. This notebook puts byte counts on it, first for the example
# of a widely shared design note for LLM output heads ($V$ = 50,000, $d$ = 2048), then for DeepSeek-V3's published sizes
# ($V$ = 129,280, $d$ = 7168), and then removes the largest item:
#
# 1. the head's parameters: weights, gradient, AdamW state;
# 2. the logits: per token, per micro-batch, and which $(N, V)$ tensors a plain loss step keeps
#    alive; the design note's memory table, recomputed and corrected;
# 3. the chunking idea, derived step by step — the gradient of each token's loss is $p - q$, every
#    gradient is a sum over tokens, so the tokens can be processed a chunk at a time — checked by
#    hand and against the library's `linear_cross_entropy`;
# 4. peak memory *measured* against the number of tokens, plain and chunked, next to the prediction;
# 5. the same prediction at the real sizes.
#
# **Units.** MB = $10^6$ bytes, GB = $10^9$ bytes; MiB = $2^{20}$ bytes, GiB = $2^{30}$ bytes.
# fp32 numbers take 4 bytes, bf16 numbers 2. Every number in the text is printed by a cell or
# checked by an `assert`; the measured cells in section 4 differ from machine to machine.
#
# **Goals.** After this notebook you can put byte counts on the head's weights, gradient, optimizer
# state and logits, name the $(N, V)$ tensors a plain loss step keeps alive, derive why a chunked
# loss is exact, use `linear_cross_entropy`, and read a measured peak-memory plot.
# **Prerequisites.** Notebook 00 ($p - \mathrm{onehot}(y)$) and notebook 01 (label smoothing).
# **Time.** About 40 minutes of reading for the core path (sections 1–3) and 15 more for the deep
# dives (sections 4–5: the measured peak, the real sizes), plus two exercises; under a minute to run.
# **Builds on.** Notebooks 00, 01 and 02.

# %% [markdown] de
# # 05 · Der Speicherbedarf des LM-Heads
#
# Die Ausgabeschicht ist ein einziges Matrixprodukt, $z = h W^\top$ – aber das breiteste im ganzen
# Modell: Für jedes Token liefert sie $V$ Zahlen. Dieses Notebook rechnet nach, wie viele Bytes das
# sind, zuerst für das Beispiel einer verbreiteten Entwurfsnotiz für LLM-Ausgabeschichten (in den
# Ausgaben `design note`; $V$ = 50.000, $d$ = 2048), dann für die veröffentlichten Größen von
# DeepSeek-V3 ($V$ = 129.280, $d$ = 7168) – und beseitigt anschließend den größten Posten:
#
# 1. die Parameter des Heads: Gewichte, Gradient, AdamW-Zustand;
# 2. die Logits: pro Token und pro Micro-Batch sowie welche $(N, V)$-Tensoren ein gewöhnlicher
#    Verlustschritt im Speicher hält; die Speichertabelle der Entwurfsnotiz, nachgerechnet und
#    korrigiert;
# 3. die Idee der blockweisen Berechnung (Chunking), Schritt für Schritt hergeleitet – der Gradient
#    des Verlusts eines Tokens ist $p - q$, jeder Gradient ist eine Summe über Tokens, also kann man
#    die Tokens blockweise abarbeiten, einen Block (Chunk) nach dem anderen –, von Hand und an
#    `linear_cross_entropy` aus der Bibliothek geprüft;
# 4. der maximale Speicherbedarf (Peak Memory) in Abhängigkeit von der Tokenzahl, *gemessen*,
#    gewöhnlich und blockweise (chunked), neben der Vorhersage;
# 5. dieselbe Vorhersage bei den echten Größen.
#
# **Einheiten.** MB = $10^6$ Byte, GB = $10^9$ Byte; MiB = $2^{20}$ Byte, GiB = $2^{30}$ Byte.
# Eine fp32-Zahl belegt 4 Byte, eine bf16-Zahl 2. Jede Zahl im Text wird von einer Zelle ausgegeben
# oder mit einem `assert` geprüft; die Messzellen in Abschnitt 4 liefern auf jedem Rechner etwas
# andere Werte.
#
# **Lernziele.** Nach diesem Notebook können Sie Gewichte, Gradient, Optimiererzustand und Logits
# des Heads in Bytes beziffern, die $(N, V)$-Tensoren benennen, die ein gewöhnlicher Verlustschritt
# im Speicher hält, herleiten, warum ein blockweise berechneter Verlust exakt ist,
# `linear_cross_entropy` verwenden und ein Diagramm des gemessenen maximalen Speicherbedarfs lesen.
# **Voraussetzungen.** Notebook 00 ($p - \mathrm{onehot}(y)$) und Notebook 01 (Label Smoothing).
# **Zeit.** Etwa 40 Minuten Lesezeit für den Kernpfad (Abschnitte 1–3) und 15 weitere für die
# Vertiefungen (Abschnitte 4–5: der gemessene maximale Speicherbedarf, die echten Größen), dazu
# zwei Aufgaben; unter einer Minute Laufzeit.
# **Grundlage.** Notebooks 00, 01 und 02.
# **Sprache.** Abbildungen, Code, Code-Kommentare und Zellausgaben sind in beiden Sprachfassungen
# englisch; der Text erklärt, was sie zeigen.

# %%
from concurrent.futures import ThreadPoolExecutor

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from aptt_edu.exercises import check
from aptt_edu.heads.language_modeling import LanguageModelingHead
from aptt_edu.loss.language_modeling import LanguageModelingLoss
from aptt_edu.loss.linear_cross_entropy import DEFAULT_CHUNK_SIZE, linear_cross_entropy

_ = torch.manual_seed(0)
torch.set_num_threads(1)  # one thread: the same float results on any machine

KB, MB, GB = 10**3, 10**6, 10**9  # decimal (SI) units
KiB, MiB, GiB = 2**10, 2**20, 2**30  # binary units


def show(n_bytes: float) -> str:
    """A byte count in decimal and binary units, e.g. '409.6 MB (390.6 MiB)'."""
    if n_bytes >= GB:
        return f"{n_bytes / GB:.2f} GB ({n_bytes / GiB:.2f} GiB)"
    if n_bytes >= MB:
        return f"{n_bytes / MB:.1f} MB ({n_bytes / MiB:.1f} MiB)"
    return f"{n_bytes / KB:.1f} kB ({n_bytes / KiB:.1f} KiB)"


# %% en tags=["language"]
LANG = "en"  # the language of the exercises' feedback (the German notebook sets "de")

# %% de tags=["language"]
LANG = "de"  # die Sprache der Rückmeldungen zu den Aufgaben (das englische Notebook setzt "en")
# %% [markdown] en
# ## 1. The head's parameters: weights, gradient, optimizer state
#
# The head is one matrix $W \in \mathbb{R}^{V \times d}$ (no bias, as in most LLMs), so it has
# $V \cdot d$ parameters. DeepSeek-V3's sizes come from its published configuration
# (`inference/configs/config_671B.json`: `"vocab_size": 129280, "dim": 7168`); its head is *not*
# tied to the input embedding (`tie_word_embeddings: false`), and the description of its weights
# (`README_WEIGHTS.md`) lists the output head as 0.9 B parameters. We let the library build both heads on PyTorch's `meta` device, which
# records shapes without allocating memory, and count.
# %% [markdown] de
# ## 1. Die Parameter des Heads: Gewichte, Gradient, Optimiererzustand
#
# Der Head ist eine Matrix $W \in \mathbb{R}^{V \times d}$ (ohne Bias, wie in den meisten LLMs), hat
# also $V \cdot d$ Parameter. Die Größen von DeepSeek-V3 stammen aus seiner veröffentlichten
# Konfiguration (`inference/configs/config_671B.json`: `"vocab_size": 129280, "dim": 7168`); sein
# Head ist *nicht* an das Eingabe-Embedding gebunden (`tie_word_embeddings: false`), und die
# Beschreibung seiner Gewichte (`README_WEIGHTS.md`) nennt für die Ausgabeschicht 0,9 Mrd. Parameter.
# Wir lassen die Bibliothek beide Heads auf PyTorchs `meta`-Gerät bauen, das nur Formen festhält und
# keinen Speicher belegt, und zählen.

# %%
CONFIGS = {  # V and d; DeepSeek-V3: inference/configs/config_671B.json (vocab_size, dim)
    "design note": dict(V=50_000, d=2048),
    "DeepSeek-V3": dict(V=129_280, d=7168),
}
for name, c in CONFIGS.items():
    with torch.device("meta"):  # shapes only, no memory
        head = LanguageModelingHead(d_model=c["d"], vocab_size=c["V"])
    c["params"] = sum(p.numel() for p in head.parameters())
    assert c["params"] == c["V"] * c["d"]  # no bias: the head is exactly one (V, d) matrix
    print(f"{name:13}  V = {c['V']:>7,}  d = {c['d']:,}  head parameters V*d = {c['params']:>11,}"
          f" = {c['params'] / 1e9:.3f} B")
note, dsv3 = CONFIGS["design note"], CONFIGS["DeepSeek-V3"]
assert note["params"] == 102_400_000 and dsv3["params"] == 926_679_040
assert round(dsv3["params"] / 1e9, 1) == 0.9  # README_WEIGHTS.md: "0.9B output Head"

# %% [markdown] en
# Bytes follow from the number format. During training with AdamW each parameter also has a
# gradient and two moment estimates ($m$ and $v$) of the same shape; notebook 02 measures this on a
# small head. The table assumes the simplest setting, everything in fp32: 4 + 4 + 8 = 16 bytes per
# parameter. (Mixed-precision set-ups keep other combinations, e.g. bf16 weights for the products
# and an fp32 master copy; the per-parameter rows let you add up any of them.)
# %% [markdown] de
# Die Bytes ergeben sich aus dem Zahlenformat. Im Training mit AdamW hat jeder Parameter außerdem
# einen Gradienten und zwei Momentschätzungen ($m$ und $v$) derselben Form; Notebook 02 misst das an
# einem kleinen Head nach. Die Tabelle nimmt den einfachsten Fall an, alles in fp32: 4 + 4 + 8 = 16
# Byte pro Parameter. (Bei gemischter Genauigkeit – Mixed Precision – liegen andere Kombinationen im
# Speicher, etwa bf16-Gewichte für die Matrixprodukte und eine fp32-Masterkopie; aus den Zeilen pro
# Parameter lässt sich jede davon zusammenzählen.)

# %%
PARAM_ROWS = [  # (what, bytes per parameter)
    ("weights, fp32", 4),
    ("weights, bf16", 2),
    ("gradient, fp32", 4),
    ("AdamW moments m and v, fp32", 8),
    ("training state, fp32: W + grad + m + v", 16),
]
print(f"{'per head':40} {'design note':>24} {'DeepSeek-V3':>24}")
for what, b in PARAM_ROWS:
    print(f"{what:40} {show(note['params'] * b):>24} {show(dsv3['params'] * b):>24}")

assert note["params"] * 4 == 409_600_000 and round(note["params"] * 4 / MiB, 1) == 390.6
assert note["params"] * 2 == 204_800_000 and note["params"] * 16 == 1_638_400_000
assert round(dsv3["params"] * 4 / GB, 2) == 3.71 and round(dsv3["params"] * 16 / GB, 2) == 14.83

# %% [markdown] en
# So the design note's "Main Head 400 MB" is the fp32 weight matrix alone: 409.6 MB, or 390.6 MiB. In
# bf16 it is 204.8 MB; with its fp32 gradient and AdamW state the head needs 1.64 GB. DeepSeek-V3's
# head is nine times larger: 3.71 GB of fp32 weights and 14.83 GB of fp32 training state. These
# numbers do not depend on the batch. The next ones do.
# %% [markdown] de
# Die Angabe „Main Head 400 MB“ (Haupt-Head: 400 MB) in der Entwurfsnotiz entspricht also allein
# der fp32-Gewichtsmatrix: 409,6 MB oder 390,6 MiB. In bf16 sind es 204,8 MB; mit fp32-Gradient und
# AdamW-Zustand braucht der Head 1,64 GB. Der Head von DeepSeek-V3 ist neunmal so groß: 3,71 GB
# fp32-Gewichte und 14,83 GB fp32-Trainingszustand. Diese Zahlen hängen nicht vom Batch ab. Die
# nächsten schon.

# %%
print(f"DeepSeek-V3 head / design-note head: {dsv3['params'] / note['params']:.2f}x")
assert round(dsv3["params"] / note["params"]) == 9

# %% [markdown] en
# ## 2. The logits
#
# ### Per token: the logits outgrow the weights at $N = d$
#
# For every token the head writes one row of $V$ logits. For $N$ tokens the logits are an
# $N \times V$ matrix, the weights a $V \times d$ matrix. In the same number format the logits are
# larger than the weights as soon as
#
# $$N \cdot V > V \cdot d \quad\Longleftrightarrow\quad N > d,$$
#
# whatever the vocabulary: after 2048 tokens for the design note's example, after 7168 tokens for
# DeepSeek-V3 — a batch of two sequences of 4096 tokens is already more.
# %% [markdown] de
# ## 2. Die Logits
#
# ### Pro Token: Ab $N = d$ sind die Logits größer als die Gewichte
#
# Für jedes Token schreibt der Head eine Zeile mit $V$ Logits. Für $N$ Tokens sind die Logits eine
# $N \times V$-Matrix, die Gewichte eine $V \times d$-Matrix. Im selben Zahlenformat sind die Logits
# größer als die Gewichte, sobald
#
# $$N \cdot V > V \cdot d \quad\Longleftrightarrow\quad N > d,$$
#
# ganz gleich, wie groß das Vokabular ist: ab 2048 Tokens beim Beispiel der Entwurfsnotiz, ab 7168
# Tokens bei DeepSeek-V3 – ein Batch aus zwei Sequenzen mit je 4096 Tokens liegt schon darüber.

# %%
for name, c in CONFIGS.items():
    per_token = c["V"] * 4  # one row of fp32 logits
    print(f"{name:13}  fp32 logits per token: {show(per_token):>20};  bf16: {show(c['V'] * 2):>20};"
          f"  logits > weights for N > d = {c['d']:,} tokens")
assert note["V"] * 4 == 200_000 and dsv3["V"] * 4 == 517_120
assert 2 * 4096 * dsv3["V"] > dsv3["params"]  # two sequences of 4096 tokens outweigh the head

# %% [markdown] en
# ### A micro-batch
#
# Take a micro-batch of $B = 8$ sequences of $T = 4096$ tokens, $N = B \cdot T = 32{,}768$ — the
# size of the example Liger Kernel's authors use (their 16.8 GB logit tensor is this batch with a
# vocabulary of 256k in bf16; we check that number first).
# %% [markdown] de
# ### Ein Micro-Batch
#
# Nehmen wir einen Micro-Batch aus $B = 8$ Sequenzen mit je $T = 4096$ Tokens,
# $N = B \cdot T = 32\,768$ – die Größe aus dem Beispiel der Liger-Kernel-Autoren (ihr
# Logits-Tensor von 16,8 GB ist genau dieser Batch mit einem Vokabular von 256k in bf16; diese Zahl
# prüfen wir zuerst).

# %%
B, T = 8, 4096
N = B * T  # tokens in the micro-batch
liger_example = N * 256_000 * 2  # bf16 logits, V = 256k
print(f"Liger's example: {N:,} tokens x 256,000 x 2 B = {show(liger_example)}")
assert round(liger_example / GB, 1) == 16.8

for name, c in CONFIGS.items():
    fp32, bf16 = N * c["V"] * 4, N * c["V"] * 2
    print(f"{name:13}  logits of {N:,} tokens: fp32 {show(fp32)}, bf16 {show(bf16)}"
          f" = {fp32 / (c['params'] * 4):.1f}x the head's fp32 weights")
assert round(N * note["V"] * 4 / GB, 2) == 6.55 and round(N * dsv3["V"] * 4 / GB, 2) == 16.94
assert N / note["d"] == 16 and round(N / dsv3["d"], 1) == 4.6  # logits / weights = N / d

# %% [markdown] en
# The logits of one micro-batch are 16 times the design-note head's weights (6.55 GB in fp32) and for
# DeepSeek-V3 4.6 times (16.94 GB). And the logits are not the only $(N, V)$ tensor of a training
# step.
#
# ### What the plain loss step keeps alive
#
# The *plain* (naive) path computes `LanguageModelingLoss(V)(F.linear(h, W), labels)` and calls
# `backward()`. Which tensors does autograd keep between forward and backward? PyTorch lets us
# watch: inside `torch.autograd.graph.saved_tensors_hooks`, every tensor an operation saves for its
# backward pass goes through our `pack` function. We run a tiny example and list the saved tensors
# of shape $(N, V)$ — once with fp32 inputs, once with bf16 inputs.
# %% [markdown] de
# Die Logits eines einzigen Micro-Batches sind 16-mal so groß wie die Gewichte des Heads aus der
# Entwurfsnotiz (6,55 GB in fp32), bei DeepSeek-V3 4,6-mal (16,94 GB). Und die Logits sind nicht der
# einzige $(N, V)$-Tensor eines Trainingsschritts.
#
# ### Was der gewöhnliche Verlustschritt im Speicher hält
#
# Der *gewöhnliche* (naive) Weg berechnet `LanguageModelingLoss(V)(F.linear(h, W), labels)` und ruft
# `backward()` auf. Welche Tensoren hebt Autograd zwischen Vorwärts- und Rückwärtsdurchlauf
# (Forward/Backward Pass) auf? PyTorch lässt uns zusehen: Innerhalb von
# `torch.autograd.graph.saved_tensors_hooks` läuft jeder Tensor, den eine Operation für den
# Rückwärtsdurchlauf speichert, durch unsere Funktion `pack`. Wir rechnen ein winziges Beispiel
# durch und listen die gespeicherten Tensoren der Form $(N, V)$ auf – einmal mit fp32-, einmal mit
# bf16-Eingaben.

# %%
def saved_logit_sized(h: torch.Tensor, W: torch.Tensor, labels: torch.Tensor) -> list[tuple]:
    """(shape, dtype) of each distinct (N, V)-sized tensor the naive forward saves for backward."""
    n_logits = h.shape[0] * h.shape[1] * W.shape[0]  # N * V
    seen: dict[int, tuple] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.numel() == n_logits:  # one entry per storage: a tensor saved twice counts once
            seen[t.untyped_storage().data_ptr()] = (tuple(t.shape), t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        LanguageModelingLoss(W.shape[0])(F.linear(h, W), labels)  # forward only
    return list(seen.values())


V_s, d_s = 11, 4
h_s = torch.randn(1, 6, d_s, requires_grad=True)  # (B, T, d)
W_s = torch.randn(V_s, d_s, requires_grad=True)  # (V, d)
y_s = torch.randint(0, V_s, (1, 6))  # (B, T)
for dtype in (torch.float32, torch.bfloat16):
    saved = saved_logit_sized(h_s.to(dtype), W_s.to(dtype), y_s)
    print(f"inputs {dtype!s:14}: saved (N, V) tensors: {saved}")
    assert saved == [((6, V_s), torch.float32)]

# %% [markdown] en
# After the forward pass one $(N, V)$ tensor survives: the **log-probabilities**
# $\log p = \log\mathrm{softmax}(z)$, saved by `log_softmax` (and used again by the NLL). The
# logits $z$ themselves are freed, because nothing needs them any more. And $\log p$ is **fp32
# even when the logits are bf16**: `LanguageModelingLoss` (like any careful loss) runs the softmax on
# an fp32 copy, `logits.float()`, because bf16 keeps only 8 significant bits.
#
# The backward pass then creates two more $(N, V)$ tensors: $\partial\mathcal{L}/\partial \log p$
# (from the NLL) and, from it and the saved $\log p$, $\partial\mathcal{L}/\partial z$ (from
# `log_softmax`). At that moment three fp32 $N \times V$ matrices are alive. Our prediction for the
# memory the plain step adds, in bytes:
#
# $$M_\text{naive}(N) \approx 4\,\big(3\,N V + V d + N d\big),$$
#
# where $4 V d$ and $4 N d$ are the gradients $\partial\mathcal{L}/\partial W$ and
# $\partial\mathcal{L}/\partial h$ that every method must produce. Section 4 measures it — with
# bf16 inputs too.
# %% [markdown] de
# Nach dem Vorwärtsdurchlauf bleibt ein einziger $(N, V)$-Tensor übrig: die
# **Log-Wahrscheinlichkeiten** $\log p = \log\mathrm{softmax}(z)$, gespeichert von `log_softmax`
# (und von der NLL noch einmal benutzt). Die Logits $z$ selbst werden freigegeben, weil nichts sie
# mehr braucht. Und $\log p$ ist **fp32, auch wenn die Logits bf16 sind**: `LanguageModelingLoss`
# berechnet die Softmax (wie jede sorgfältige Verlustfunktion) auf einer fp32-Kopie,
# `logits.float()`, denn bf16 hat nur 8 signifikante Bits.
#
# Der Rückwärtsdurchlauf erzeugt dann zwei weitere $(N, V)$-Tensoren:
# $\partial\mathcal{L}/\partial \log p$ (aus der NLL) und daraus, zusammen mit dem gespeicherten
# $\log p$, $\partial\mathcal{L}/\partial z$ (aus `log_softmax`). In diesem Moment liegen drei
# fp32-Matrizen der Größe $N \times V$ gleichzeitig im Speicher. Unsere Vorhersage für den Speicher,
# den der gewöhnliche Schritt zusätzlich belegt, in Byte:
#
# $$M_\text{naive}(N) \approx 4\,\big(3\,N V + V d + N d\big),$$
#
# wobei $4 V d$ und $4 N d$ die Gradienten $\partial\mathcal{L}/\partial W$ und
# $\partial\mathcal{L}/\partial h$ sind, die jedes Verfahren liefern muss. Abschnitt 4 misst das
# nach – auch mit bf16-Eingaben.

# %%
def naive_peak(N: int, V: int, d: int) -> int:
    """Predicted bytes of the plain fp32 loss step: three (N, V) fp32 buffers + dL/dW + dL/dh."""
    return 4 * (3 * N * V + V * d + N * d)


for name, c in CONFIGS.items():
    print(f"{name:13}  plain loss step, {N:,} tokens: {show(naive_peak(N, c['V'], c['d']))}")
assert round(naive_peak(N, note["V"], note["d"]) / GB, 1) == 20.3
assert round(naive_peak(N, dsv3["V"], dsv3["d"]) / GB, 1) == 55.5

# %% [markdown] en
# ### The design note's table, recomputed and corrected
#
# The design note lists the main head as "400 MB". Here is what the head costs, with the
# assumptions stated per row, for one micro-batch of $B \cdot T = 32{,}768$ tokens.
# %% [markdown] de
# ### Die Tabelle der Entwurfsnotiz, nachgerechnet und korrigiert
#
# Die Entwurfsnotiz führt den Haupt-Head mit „400 MB“. So viel kostet der Head – die Annahmen
# stehen in jeder Zeile – bei einem Micro-Batch von $B \cdot T = 32\,768$ Tokens.

# %%
TABLE = [  # (row, bytes as a function of one config)
    ("head weights, fp32 (the design note's '400 MB')", lambda c: c["params"] * 4),
    ("head weights, bf16", lambda c: c["params"] * 2),
    ("W + grad + AdamW m, v, fp32 (16 B/param)", lambda c: c["params"] * 16),
    ("logits, fp32, one micro-batch", lambda c: N * c["V"] * 4),
    ("logits, bf16, one micro-batch", lambda c: N * c["V"] * 2),
    ("plain loss step (3 fp32 N x V + grads)", lambda c: naive_peak(N, c["V"], c["d"])),
]
print(f"B = {B}, T = {T}, N = {N:,} tokens; MB = 1e6 B, MiB = 2^20 B\n")
print(f"{'':44} {'note: V=50,000 d=2048':>24} {'DeepSeek-V3: V=129,280 d=7168':>31}")
for row, size in TABLE:
    print(f"{row:44} {show(size(note)):>24} {show(size(dsv3)):>31}")

# %% [markdown] en
# The correction in one sentence: "400 MB" is right for the fp32 weights alone (409.6 MB), but the
# head's training memory is dominated by the logits and the buffers of the loss, which grow with
# every token in the batch — for one micro-batch of the design note's example the plain loss step needs
# 20.3 GB, about 50 times the "400 MB". DeepSeek-V3 with its MTP module ($D = 1$) applies the same
# head a second time, to $T - 1$ more positions per sequence, which nearly doubles the logits rows.
# %% [markdown] de
# Die Korrektur in einem Satz: „400 MB“ stimmt für die fp32-Gewichte allein (409,6 MB), aber den
# Trainingsspeicher des Heads bestimmen die Logits und die Puffer der Verlustfunktion, die mit jedem
# Token im Batch wachsen – für einen Micro-Batch im Beispiel der Entwurfsnotiz braucht der
# gewöhnliche Verlustschritt 20,3 GB, rund das 50-Fache der „400 MB“. DeepSeek-V3 wendet mit seinem
# MTP-Modul ($D = 1$) denselben Head ein zweites Mal an, auf $T - 1$ weitere Positionen pro
# Sequenz; das verdoppelt die Zahl der Logit-Zeilen nahezu.

# %%
print(f"plain loss step / '400 MB': {naive_peak(N, note['V'], note['d']) / (400 * MB):.1f}x")
assert round(naive_peak(N, note["V"], note["d"]) / (400 * MB), -1) == 50
mtp_rows = B * (T + (T - 1))  # main head on T positions + MTP depth 1 on T - 1 positions
print(f"DeepSeek-V3 logit rows with MTP (D = 1): {mtp_rows:,} = {mtp_rows / N:.4f} x {N:,}; "
      f"fp32 logits {show(mtp_rows * dsv3['V'] * 4)}")

# %% [markdown] en
# ## 3. The chunking idea, derived
#
# The way out is in the structure of the loss. We derive it in four steps on a tiny example:
# $N = 10$ tokens, $V = 7$, $d = 4$, label smoothing $\varepsilon = 0.1$ and one padded position.
#
# ### Step 1: the gradient of one token's loss is $p - q$
#
# With the smoothed target $q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon / V$ (notebook
# 01), the loss of one token is $\ell = -\sum_v q_v \log p_v$. Since
# $\log p_v = z_v - \log\sum_u e^{z_u}$ and $\sum_v q_v = 1$,
#
# $$\ell = \log\sum_u e^{z_u} - \sum_v q_v z_v
# \qquad\Longrightarrow\qquad
# \delta_v := \frac{\partial \ell}{\partial z_v} = \frac{e^{z_v}}{\sum_u e^{z_u}} - q_v = p_v - q_v .$$
#
# The mean over the $N_\text{valid}$ targets scales each row by $w_i = 1/N_\text{valid}$, and a
# padded position has $w_i = 0$. We compare with autograd.
# %% [markdown] de
# ## 3. Die Idee der blockweisen Berechnung, hergeleitet
#
# Der Ausweg steckt in der Struktur der Verlustfunktion. Wir leiten ihn in vier Schritten an einem
# winzigen Beispiel her: $N = 10$ Tokens, $V = 7$, $d = 4$, Label Smoothing $\varepsilon = 0{,}1$
# und eine Padding-Position.
#
# ### Schritt 1: Der Gradient des Verlusts eines Tokens ist $p - q$
#
# Mit dem geglätteten Ziel $q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon / V$ (Notebook 01)
# ist der Verlust eines Tokens $\ell = -\sum_v q_v \log p_v$. Wegen
# $\log p_v = z_v - \log\sum_u e^{z_u}$ und $\sum_v q_v = 1$ gilt
#
# $$\ell = \log\sum_u e^{z_u} - \sum_v q_v z_v
# \qquad\Longrightarrow\qquad
# \delta_v := \frac{\partial \ell}{\partial z_v} = \frac{e^{z_v}}{\sum_u e^{z_u}} - q_v = p_v - q_v .$$
#
# Der Mittelwert über die $N_\text{valid}$ Ziele skaliert jede Zeile mit $w_i = 1/N_\text{valid}$,
# und eine Padding-Position hat $w_i = 0$. Wir vergleichen mit Autograd.

# %%
N_s, V_s, d_s, C_s, eps = 10, 7, 4, 4, 0.1  # tokens, vocabulary, width, chunk size, smoothing
h = torch.randn(1, N_s, d_s)  # (B=1, N, d) hidden states
W = torch.randn(V_s, d_s)  # (V, d) head weight
y = torch.randint(0, V_s, (1, N_s))  # (B=1, N) shifted labels
y[0, 7] = -100  # one padded position
loss_fn = LanguageModelingLoss(V_s, label_smoothing=eps)

z = F.linear(h, W).requires_grad_()  # (1, N, V) logits, a leaf so that autograd stores z.grad
loss_fn(z, y).backward()

valid = y[0] != -100  # (N,)
w = valid.float() / valid.sum()  # (N,) w_i = [y_i ≠ ignore] / N_valid
# q = (1 − ε) · onehot(y) + ε / V
q = (1 - eps) * F.one_hot(y[0].clamp(min=0), V_s) + eps / V_s  # (N, V)
p = z[0].detach().softmax(dim=-1)  # (N, V)
delta = p - q  # (N, V) δ = ∂ℓ/∂z
print("dL/dz: w * (p - q) == autograd:", torch.allclose(w[:, None] * delta, z.grad[0], atol=1e-7))
assert torch.allclose(w[:, None] * delta, z.grad[0], atol=1e-7)

# %% [markdown] en
# ### Exercise: the gradient p − onehot(y), without autograd
#
# Write `my_softmax_gradient(logits, labels)`: for logits `(N, V)` and labels `(N,)` the
# gradient of the *summed* cross-entropy $\sum_i -\log p_{i, y_i}$ with respect to the logits,
# `(N, V)`, from the formula above with $\varepsilon = 0$ — no `backward()`. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Der Gradient p − onehot(y), ohne Autograd
#
# Schreiben Sie `my_softmax_gradient(logits, labels)`: für Logits `(N, V)` und Labels `(N,)` den
# Gradienten der *summierten* Kreuzentropie $\sum_i -\log p_{i, y_i}$ nach den Logits, `(N, V)`,
# aus der Formel oben mit $\varepsilon = 0$ – ohne `backward()`. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen
# Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt;
# versuchen Sie es zuerst selbst.

# %%
def my_softmax_gradient(logits, labels):
    """(N, V) logits, (N,) labels -> (N, V) gradient of sum_i -log p[i, y_i] w.r.t. the logits."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_softmax_gradient(logits, labels):
    p = logits.softmax(dim=-1)  # (N, V)
    return p - F.one_hot(labels, logits.shape[-1]).to(p.dtype)  # delta = p - onehot(y)

# %%
result = check("softmax_gradient", my_softmax_gradient, lang=LANG)

# %% [markdown] en
# ### Step 2: every gradient is a sum over tokens
#
# The loss is a sum over tokens, $\mathcal{L} = \sum_i w_i \ell_i(z_i)$, and token $i$'s logits
# depend only on its own hidden state, $z_i = h_i W^\top$. The chain rule gives
#
# $$\frac{\partial\mathcal{L}}{\partial h_i} = w_i\,\delta_i\,W, \qquad
# \frac{\partial\mathcal{L}}{\partial W} = \sum_i w_i\,\delta_i^\top h_i .$$
#
# Row $i$ of everything needs only row $i$ of $z$ and of $\delta$; the weight gradient is a *sum*
# over tokens, which can be accumulated piece by piece. Nothing ever needs all $N$ rows of logits
# at once.
#
# ### Step 3: a chunked loop by hand
#
# So walk over the tokens in chunks of $C$ rows: compute the chunk's logits, its loss, its
# $\delta$, add its contributions to the gradients, and let the chunk's $(C, V)$ tensors go before
# the next chunk. The loop below is written for reading, not for speed; $N = 10$ and $C = 4$ leave a
# short last chunk of two rows.
# %% [markdown] de
# ### Schritt 2: Jeder Gradient ist eine Summe über Tokens
#
# Der Verlust ist eine Summe über Tokens, $\mathcal{L} = \sum_i w_i \ell_i(z_i)$, und die Logits
# von Token $i$ hängen nur von seinem eigenen Hidden State ab, $z_i = h_i W^\top$. Die Kettenregel
# liefert
#
# $$\frac{\partial\mathcal{L}}{\partial h_i} = w_i\,\delta_i\,W, \qquad
# \frac{\partial\mathcal{L}}{\partial W} = \sum_i w_i\,\delta_i^\top h_i .$$
#
# Für Zeile $i$ jeder dieser Größen braucht man nur Zeile $i$ von $z$ und von $\delta$; der Gradient
# der Gewichte ist eine *Summe* über Tokens und lässt sich Stück für Stück aufaddieren. Nirgends
# werden alle $N$ Zeilen der Logits gleichzeitig gebraucht.
#
# ### Schritt 3: eine blockweise Schleife, von Hand
#
# Also geht man die Tokens in Chunks von je $C$ Zeilen durch: die Logits des Chunks, seinen Verlust
# und sein $\delta$ berechnen, seine Beiträge zu den Gradienten addieren – und die $(C, V)$-Tensoren
# des Chunks freigeben, bevor der nächste an der Reihe ist. Die Schleife unten ist auf Lesbarkeit
# ausgelegt, nicht auf Geschwindigkeit; $N = 10$ und $C = 4$ lassen einen kurzen letzten Chunk von
# zwei Zeilen übrig.

# %%
def chunked_by_hand(h, W, y, eps, C):
    """Loss, dL/dh and dL/dW of the mean label-smoothed CE of h @ W.T, C tokens at a time."""
    h, y = h.reshape(-1, h.shape[-1]), y.reshape(-1)  # (N, d), (N,)
    V = W.shape[0]
    valid = y != -100
    n_valid = valid.sum().clamp(min=1)
    loss = torch.zeros(())
    grad_h = torch.zeros_like(h)  # (N, d)
    grad_W = torch.zeros_like(W)  # (V, d)
    for start in range(0, h.shape[0], C):
        rows = slice(start, start + C)
        h_c, y_c, w_c = h[rows], y[rows], valid[rows] / n_valid  # (C, d), (C,), (C,)
        z_c = h_c @ W.T  # (C, V): the only V-wide tensors live inside this loop body
        log_p = z_c.log_softmax(dim=-1)  # (C, V)
        q_c = (1 - eps) * F.one_hot(y_c.clamp(min=0), V) + eps / V  # (C, V)
        # L += Σ_{i∈c} w_i ℓ_i with ℓ_i = −Σ_v q_iv log p_iv
        loss += (w_c * -(q_c * log_p).sum(dim=-1)).sum()
        delta = w_c[:, None] * (log_p.exp() - q_c)  # (C, V) w_i (p_i − q_i)
        grad_h[rows] = delta @ W  # (C, d) w_i δ_i W
        grad_W += delta.T @ h_c  # (V, d) += Σ_{i∈c} w_i δ_iᵀ h_i
    return loss, grad_h.reshape(1, -1, h.shape[-1]), grad_W


# the naive path: full (N, V) logits, autograd
h_n, W_n = h.clone().requires_grad_(), W.clone().requires_grad_()
naive_loss = loss_fn(F.linear(h_n, W_n), y)
naive_loss.backward()

hand_loss, hand_grad_h, hand_grad_W = chunked_by_hand(h, W, y, eps, C=C_s)
print(f"loss: naive {naive_loss.item():.6f} | chunked by hand {hand_loss.item():.6f}")
assert torch.allclose(hand_loss, naive_loss, atol=1e-6)
assert torch.allclose(hand_grad_h, h_n.grad, atol=1e-6) and torch.allclose(hand_grad_W, W_n.grad, atol=1e-6)

# %% [markdown] en
# Same loss, same gradients, and the largest tensors in the loop are $(C, V)$. Peak memory no longer
# grows with $N \cdot V$ but with $C \cdot V$, which we choose.
#
# ### Step 4: the library's `linear_cross_entropy`
#
# `aptt_edu.loss.linear_cross_entropy.linear_cross_entropy(hidden, weight, labels, ...)` is this loop
# as a `torch.autograd.Function`, with two engineering changes: it computes the gradients *during the
# forward pass* (the backward pass only multiplies them by the incoming scalar), and it does each
# chunk's steps in place in one reused fp32 buffer of $C \times V$ numbers (default
# $C$ = 512), instead of the four $(C, V)$ tensors of our loop. Its numbers must be ours:
# %% [markdown] de
# Gleicher Verlust, gleiche Gradienten – und die größten Tensoren in der Schleife haben die Form
# $(C, V)$. Der maximale Speicherbedarf wächst nicht mehr mit $N \cdot V$, sondern mit $C \cdot V$,
# und $C$ wählen wir selbst.
#
# ### Schritt 4: `linear_cross_entropy` aus der Bibliothek
#
# `aptt_edu.loss.linear_cross_entropy.linear_cross_entropy(hidden, weight, labels, ...)` ist diese
# Schleife als `torch.autograd.Function`, mit zwei technischen Änderungen: Die Gradienten entstehen
# schon *im Vorwärtsdurchlauf* (der Rückwärtsdurchlauf multipliziert sie nur noch mit dem
# eingehenden Skalar), und die Schritte jedes Chunks laufen in-place in einem einzigen,
# wiederverwendeten fp32-Puffer von $C \times V$ Zahlen (Standard: $C$ = 512) statt in den vier
# $(C, V)$-Tensoren unserer Schleife. Die Funktion muss genau unsere Zahlen liefern:

# %%
h_l, W_l = h.clone().requires_grad_(), W.clone().requires_grad_()
lib_loss = linear_cross_entropy(h_l, W_l, y, label_smoothing=eps, chunk_size=C_s)
lib_loss.backward()
print(f"loss: linear_cross_entropy {lib_loss.item():.6f} | chunked by hand {hand_loss.item():.6f}"
      f" | default chunk size C = {DEFAULT_CHUNK_SIZE}")
assert torch.allclose(lib_loss, hand_loss, atol=1e-6)
assert torch.allclose(h_l.grad, hand_grad_h, atol=1e-6) and torch.allclose(W_l.grad, hand_grad_W, atol=1e-6)

# %% [markdown] en
# The memory the chunked step adds is then one chunk buffer plus the same two gradients as before:
#
# $$M_\text{chunked}(N) \approx 4\,\big(\min(C, N)\,V + V d + N d\big).$$
#
# The $N \cdot V$ term is gone; only the small $N \cdot d$ term still grows with the batch.
# %% [markdown] de
# Der Speicher, den der blockweise Schritt zusätzlich belegt, ist dann ein Chunk-Puffer plus
# dieselben zwei Gradienten wie zuvor:
#
# $$M_\text{chunked}(N) \approx 4\,\big(\min(C, N)\,V + V d + N d\big).$$
#
# Der Term $N \cdot V$ ist verschwunden; nur der kleine Term $N \cdot d$ wächst noch mit dem Batch.

# %%
def chunked_peak(N: int, V: int, d: int, C: int = DEFAULT_CHUNK_SIZE) -> int:
    """Predicted bytes of the chunked step: one fp32 (C, V) buffer + dL/dW + dL/dh."""
    return 4 * (min(C, N) * V + V * d + N * d)


for name, c in CONFIGS.items():
    print(f"{name:13}  chunked loss step, {N:,} tokens, C = {DEFAULT_CHUNK_SIZE}: "
          f"{show(chunked_peak(N, c['V'], c['d']))}  (plain: {show(naive_peak(N, c['V'], c['d']))})")

# %% [markdown] en
# **Try it.** The two formulas for other sizes: which term dominates the plain step, and from which
# chunk size on does chunking stop paying off? In a live notebook (Jupyter, Colab) the sliders below redraw the figure; on the docs site and under
# the notebook tests it is drawn once, with the defaults (`aptt_edu.widgets.explore`).
# %% [markdown] de
# **Probieren Sie es aus.** Die beiden Formeln für andere Größen: Welcher Term dominiert den
# gewöhnlichen Schritt, und ab welcher Chunk-Größe lohnt sich die blockweise Berechnung nicht mehr?
# In einem laufenden Notebook (Jupyter, Colab) zeichnen die Schieberegler unten die Abbildung neu;
# auf der Website und in den Notebook-Tests wird sie einmal mit den Voreinstellungen gezeichnet
# (`aptt_edu.widgets.explore`). Die Balken zeigen den Speicherbedarf des blockweisen (`chunked loss step`)
# und des gewöhnlichen Verlustschritts (`plain loss step`) in GB (fp32); der Titel nennt die Größen
# und das Verhältnis `chunked / plain`.

# %%
from aptt_edu.widgets import explore


def draw_memory(tokens: int, V: int, d: int, chunk: int) -> None:
    plain, chunked = naive_peak(tokens, V, d), chunked_peak(tokens, V, d, chunk)
    _, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(["chunked loss step", "plain loss step"], [chunked / GB, plain / GB], color=["C2", "C3"])
    ax.set_xlabel("GB (fp32)")
    ax.set_title(f"N = {tokens:,}, V = {V:,}, d = {d:,}, C = {chunk:,}: "
                 f"chunked / plain = {chunked / plain:.3f}")
    plt.show()


explore(draw_memory, tokens=(1024, 131072, 1024, 32768), V=(1000, 256000, 1000, 50000),
        d=(256, 8192, 256, 2048), chunk=(256, 16384, 256, DEFAULT_CHUNK_SIZE))

# %% [markdown] en
# *Figure:* the memory of one loss step of the LM head in fp32, plain (all $N \times V$ logits at
# once) against chunked ($C$ tokens at a time), for the sizes of the sliders; the title gives the
# ratio.
# %% [markdown] de
# *Abbildung:* der Speicherbedarf eines Verlustschritts des LM-Heads in fp32, gewöhnlich
# (`plain loss step`: alle $N \times V$ Logits auf einmal) und blockweise (`chunked loss step`: je
# $C$ Tokens auf einmal), für die mit den Schiebereglern gewählten Größen; der Titel nennt das
# Verhältnis (`chunked / plain`).

# %% [markdown] en
# ### Exercise: a chunked cross-entropy
#
# Write `my_chunked_cross_entropy(hidden, weight, labels, chunk_size)`: hidden states `(N, d)`,
# head weight `(V, d)`, labels `(N,)` with `-100` for "no target": the mean cross-entropy of
# `hidden @ weight.T` over the valid labels, computed chunk by chunk so that no operation ever makes
# more than `chunk_size` rows of logits. Autograd may do the backward pass. The check watches every
# tensor your function creates. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Eine blockweise Kreuzentropie
#
# Schreiben Sie `my_chunked_cross_entropy(hidden, weight, labels, chunk_size)`: Hidden States
# `(N, d)`, Gewicht des Heads `(V, d)`, Labels `(N,)` mit `-100` für „kein Ziel“: die mittlere
# Kreuzentropie von `hidden @ weight.T` über die gültigen Labels, Chunk für Chunk berechnet, sodass
# keine Operation je mehr als `chunk_size` Zeilen Logits erzeugt. Den Rückwärtsdurchlauf darf
# Autograd übernehmen. Die Prüfung überwacht jeden Tensor, den Ihre Funktion erzeugt. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren
# Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem
# Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_chunked_cross_entropy(hidden, weight, labels, chunk_size):
    """(N, d), (V, d), (N,) -> mean CE over labels != -100, at most chunk_size rows of logits."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_chunked_cross_entropy(hidden, weight, labels, chunk_size):
    total = hidden.new_zeros(())
    for start in range(0, hidden.shape[0], chunk_size):
        z = hidden[start : start + chunk_size] @ weight.T  # (<= chunk_size, V): one chunk of logits
        y = labels[start : start + chunk_size]
        total = total + F.cross_entropy(z, y, ignore_index=-100, reduction="sum")  # a sum, not a mean
    return total / (labels != -100).sum()  # divide once by all valid targets

# %%
result = check("chunked_cross_entropy", my_chunked_cross_entropy, lang=LANG)

# %% [markdown] en
# ## 4. Measured: peak memory vs tokens
#
# Predictions are cheap; now we measure. `aptt_edu.memory.measure_peak` runs one forward and
# backward step of the loss in a **fresh Python process** and reports how much the process's peak
# resident memory rose during that step (on Linux the `VmHWM` counter of `/proc/self/status`, reset
# just before the step). A fresh process per measurement means that no variant inherits pages
# another one freed (`benchmarks/bench_chunked_loss.py` measures with the same function and adds
# timings). We run two processes at a time; each one measures only itself.
#
# The sizes are chosen to run in seconds on a laptop CPU: $V$ = 32,000 (Llama 2's vocabulary),
# $d$ = 64, $N$ from 256 to 2048 tokens, fp32, plus the plain step with **bf16** inputs at the
# largest $N$. The small $d$ keeps the matrix products fast; the memory that matters, $N \cdot V$,
# does not depend on $d$.
# %% [markdown] de
# ## 4. Gemessen: maximaler Speicherbedarf in Abhängigkeit von der Tokenzahl
#
# Vorhersagen sind billig; jetzt wird gemessen. `aptt_edu.memory.measure_peak` führt einen
# Vorwärts- und Rückwärtsdurchlauf der Verlustfunktion in einem **frischen Python-Prozess** aus und
# meldet, um wie viel der maximale residente Speicher des Prozesses während dieses Schritts
# gestiegen ist (unter Linux der Zähler `VmHWM` aus `/proc/self/status`, direkt vor dem Schritt
# zurückgesetzt). Ein frischer Prozess pro Messung sorgt dafür, dass keine Variante Speicherseiten
# erbt, die eine andere freigegeben hat (`benchmarks/bench_chunked_loss.py` misst mit derselben
# Funktion und ergänzt Zeitmessungen). Wir lassen je zwei Prozesse gleichzeitig laufen; jeder misst
# nur sich selbst.
#
# Die Größen sind so gewählt, dass alles auf einer Laptop-CPU in Sekunden läuft: $V$ = 32.000 (das
# Vokabular von Llama 2), $d$ = 64, $N$ von 256 bis 2048 Tokens, fp32, dazu der gewöhnliche Schritt
# mit **bf16**-Eingaben beim größten $N$. Das kleine $d$ hält die Matrixprodukte schnell; der
# Speicher, auf den es ankommt, $N \cdot V$, hängt nicht von $d$ ab.

# %% tags=["nbval-ignore-output"]
from itertools import pairwise

from aptt_edu.memory import measure_peak

V_m, d_m, SWEEP = 32_000, 64, [256, 512, 1024, 2048]
jobs = [(variant, n, "float32") for n in SWEEP for variant in ("naive", "chunked")]
jobs.append(("naive", SWEEP[-1], "bfloat16"))
with ThreadPoolExecutor(max_workers=2) as pool:  # each job starts its own fresh process
    peaks = list(pool.map(lambda job: measure_peak(job[0], job[1], vocab=V_m, d_model=d_m, dtype=job[2]), jobs))
measured = dict(zip(jobs, peaks, strict=True))  # (variant, N, dtype) -> bytes

print(f"V = {V_m:,}, d = {d_m}, C = {DEFAULT_CHUNK_SIZE}; peak memory added by one step, MiB\n")
print(f"{'N':>5} | {'plain: measured':>15} {'predicted':>9} | {'chunked: measured':>17} {'predicted':>9}"
      f" | {'chunked/plain':>13}")
for n in SWEEP:
    nv, ch = measured["naive", n, "float32"], measured["chunked", n, "float32"]
    print(f"{n:>5} | {nv / MiB:>15.1f} {naive_peak(n, V_m, d_m) / MiB:>9.1f} | {ch / MiB:>17.1f}"
          f" {chunked_peak(n, V_m, d_m) / MiB:>9.1f} | {ch / nv:>13.3f}")
bf16_naive = measured["naive", SWEEP[-1], "bfloat16"]
print(f"\nplain step with bf16 inputs at N = {SWEEP[-1]}: {bf16_naive / MiB:.1f} MiB "
      f"(fp32: {measured['naive', SWEEP[-1], 'float32'] / MiB:.1f} MiB)")

# %% tags=["nbval-ignore-output"]
n_line = list(range(1, SWEEP[-1] + 1))
fig, ax = plt.subplots(figsize=(7, 4.2))
ax.plot(n_line, [naive_peak(n, V_m, d_m) / MiB for n in n_line], "C0--", lw=1, label="plain, predicted")
ax.plot(n_line, [chunked_peak(n, V_m, d_m) / MiB for n in n_line], "C1--", lw=1, label="chunked, predicted")
ax.plot(SWEEP, [measured["naive", n, "float32"] / MiB for n in SWEEP], "C0o", label="plain, measured")
ax.plot(SWEEP, [measured["chunked", n, "float32"] / MiB for n in SWEEP], "C1s", label="chunked, measured")
ax.plot([SWEEP[-1]], [bf16_naive / MiB], "C2^", ms=12, mfc="none", mew=1.5, label="plain, bf16 inputs, measured")
ax.set(xlim=(0, SWEEP[-1] * 1.05), ylim=(0, None), xlabel="tokens per step N = B·T",
       ylabel="peak memory added by the step [MiB]",
       title=f"Loss step of the LM head: V = {V_m:,}, d = {d_m}, chunk C = {DEFAULT_CHUNK_SIZE}, CPU")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown] en
# *Figure:* the peak memory that one loss step adds, against the tokens per step $N$: predicted
# (dashed) and measured on the machine that ran the notebook (markers), for the plain and the
# chunked step; the triangle is the plain step with bf16 inputs.
# %% [markdown] de
# *Abbildung:* der zusätzliche maximale Speicherbedarf eines Verlustschritts über der Tokenzahl $N$
# pro Schritt, vorhergesagt (gestrichelt) und gemessen (Messpunkte), auf dem Rechner, auf dem das
# Notebook lief, für den gewöhnlichen (`plain`) und den blockweisen Schritt (`chunked`); das Dreieck
# ist der gewöhnliche Schritt mit bf16-Eingaben.

# %% [markdown] en
# What the measurement shows, and the cell below checks with generous tolerances (the exact numbers
# depend on the machine and its memory allocator):
#
# * **The plain step grows linearly in $N$**, with a slope of about $3 \cdot V \cdot 4$ bytes per
#   token — three fp32 rows of $V$ numbers per token, as counted in section 2.
# * **bf16 inputs do not help the plain step**: its peak stays at about the fp32 value, because
#   the softmax and both $(N, V)$ gradients are fp32 either way.
# * **The chunked step is flat** once $N \ge C$: one buffer of $C \cdot V$ numbers, whatever the
#   batch. At the largest $N$ it needs a fraction of the plain step's memory (the last column above),
#   and that fraction keeps shrinking as $N$ grows.
#
# The measured points sit on the dashed lines or a few MiB above them (the cell below prints by how
# much): the prediction counts only the large tensors, not the small ones and the bookkeeping of a
# fresh process.
# %% [markdown] de
# In der Abbildung steht `plain` für den gewöhnlichen und `chunked` für den blockweisen Schritt;
# gestrichelt ist die Vorhersage (`predicted`), Kreise und Quadrate sind Messungen (`measured`), das
# Dreieck ist der gewöhnliche Schritt mit bf16-Eingaben. Die y-Achse zeigt den zusätzlichen
# maximalen Speicherbedarf des Schritts in MiB, die x-Achse die Tokens pro Schritt $N = B \cdot T$.
#
# Was die Messung zeigt – und die Zelle darunter mit großzügigen Toleranzen prüft (die genauen Zahlen
# hängen vom Rechner und seiner Speicherverwaltung ab):
#
# * **Der gewöhnliche Schritt wächst linear mit $N$**, mit einer Steigung von etwa $3 \cdot V \cdot 4$
#   Byte pro Token – drei fp32-Zeilen mit $V$ Zahlen pro Token, wie in Abschnitt 2 gezählt.
# * **bf16-Eingaben helfen dem gewöhnlichen Schritt nicht**: Sein maximaler Speicherbedarf bleibt
#   etwa beim fp32-Wert, weil die Softmax und beide $(N, V)$-Gradienten in jedem Fall fp32 sind.
# * **Der blockweise Schritt verläuft flach**, sobald $N \ge C$: ein Puffer von $C \cdot V$ Zahlen,
#   egal, wie groß der Batch ist. Beim größten $N$ braucht er nur einen Bruchteil des Speichers des
#   gewöhnlichen Schritts (letzte Spalte oben), und dieser Bruchteil wird mit wachsendem $N$ immer
#   kleiner.
#
# Die Messpunkte liegen auf den gestrichelten Linien oder ein paar MiB darüber (die Zelle unten gibt
# aus, wie viel): Die Vorhersage zählt nur die großen Tensoren, nicht die kleinen und nicht die
# Verwaltungsdaten eines frischen Prozesses.

# %% tags=["nbval-ignore-output"]
naive_m = [measured["naive", n, "float32"] for n in SWEEP]
chunk_m = [measured["chunked", n, "float32"] for n in SWEEP]
# linear growth: least-squares slope over N >= C, in bytes per token, vs 3·V·4 + 4d
big = [(n, m) for n, m in zip(SWEEP, naive_m, strict=True) if n >= DEFAULT_CHUNK_SIZE]
n_mean = sum(n for n, _ in big) / len(big)
m_mean = sum(m for _, m in big) / len(big)
slope = sum((n - n_mean) * (m - m_mean) for n, m in big) / sum((n - n_mean) ** 2 for n, _ in big)
predicted_slope = 4 * (3 * V_m + d_m)
print(f"plain step: {slope:,.0f} bytes per token measured, {predicted_slope:,} predicted "
      f"({slope / predicted_slope:.3f}x)")
assert 0.8 < slope / predicted_slope < 1.2
# bf16 inputs: the plain step stays near its fp32 peak
print(f"plain step, bf16 / fp32 inputs at N = {SWEEP[-1]}: {bf16_naive / naive_m[-1]:.3f}")
assert bf16_naive > 0.8 * naive_m[-1]
# chunked: flat for N >= C, and far below the plain step at the largest N
growth = (chunk_m[-1] - chunk_m[1]) / (naive_m[-1] - naive_m[1])  # from N = 512 to N = 2048
print(f"chunked growth from N = {SWEEP[1]} to {SWEEP[-1]}: {growth:.3f} of the plain step's growth")
print(f"chunked / plain at N = {SWEEP[-1]}: {chunk_m[-1] / naive_m[-1]:.3f}")
assert growth < 0.1 and chunk_m[-1] < naive_m[-1] / 3
ratios = [ch / nv for ch, nv in zip(chunk_m, naive_m, strict=True)]
assert all(a > b for a, b in pairwise(ratios))  # the fraction shrinks as N grows
# the dashed lines: every measured point within 32 MiB of its prediction
offsets = [m - naive_peak(n, V_m, d_m) for n, m in zip(SWEEP, naive_m, strict=True)]
offsets += [m - chunked_peak(n, V_m, d_m) for n, m in zip(SWEEP, chunk_m, strict=True)]
print(f"measured - predicted: from {min(offsets) / MiB:.1f} to {max(offsets) / MiB:.1f} MiB")
assert all(abs(o) < 32 * MiB for o in offsets)

# %% [markdown] en
# ## 5. Back to the real sizes
#
# The two formulas have now been checked against measurements, so we can use them at the sizes
# nobody runs on a laptop. For one micro-batch of $N = 32{,}768$ tokens with the default chunk of
# $C = 512$:
# %% [markdown] de
# ## 5. Zurück zu den echten Größen
#
# Beide Formeln sind jetzt an Messungen geprüft; also können wir sie bei Größen verwenden, die
# niemand auf einem Laptop laufen lässt. Für einen Micro-Batch von $N = 32\,768$ Tokens mit dem
# Standard-Chunk $C = 512$:

# %%
print(f"B = {B}, T = {T}, N = {N:,} tokens, C = {DEFAULT_CHUNK_SIZE}, fp32\n")
print(f"{'':13} {'plain loss step':>24} {'chunked loss step':>24} {'of which (C, V) buffer':>24} {'plain/chunked':>14}")
for name, c in CONFIGS.items():
    plain, chunked = naive_peak(N, c["V"], c["d"]), chunked_peak(N, c["V"], c["d"])
    buffer = DEFAULT_CHUNK_SIZE * c["V"] * 4
    print(f"{name:13} {show(plain):>24} {show(chunked):>24} {show(buffer):>24} {plain / chunked:>13.1f}x")
    c["plain"], c["chunked"], c["buffer"] = plain, chunked, buffer
assert round(dsv3["plain"] / GB, 1) == 55.5 and round(dsv3["chunked"] / GB, 2) == 4.91
assert round(dsv3["buffer"] / MB, 1) == 264.8 and round(note["buffer"] / MB, 1) == 102.4
assert dsv3["chunked"] < dsv3["plain"] / 10 and note["chunked"] < note["plain"] / 10

# %% [markdown] en
# For DeepSeek-V3's head, the plain loss step of one such micro-batch would add 55.5 GB; the chunked
# step adds 4.91 GB, of which the chunk buffer is only 264.8 MB — the rest is the fp32 gradient of
# the weights and of the hidden states, which any method has to produce. And because the buffer does
# not grow with $N$, a larger micro-batch costs only the $N \cdot d$ term. (These are the numbers of
# a plain single-device PyTorch step; a real DeepSeek-V3 run distributes its tensors over many GPUs
# and uses its own kernels. They come from the formulas, which §4 checks by measurement at
# $d = 64$, where the $V d$ and $N d$ terms are small; at DeepSeek-V3's width, where those terms
# matter and it is not measured whether all of them coexist with the three $N \times V$ buffers,
# read them as estimates good to about 10 %, not to three digits.)
#
# This is the idea behind Liger Kernel's fused linear cross-entropy and Apple's Cut Cross-Entropy;
# the Cut Cross-Entropy authors report cutting the memory of Gemma 2 (2B)'s loss computation from
# 24 GB to 1 MB with fused GPU kernels. `linear_cross_entropy` is the readable version in plain
# PyTorch.
#
# **Summary.**
#
# * The design note's "Main Head 400 MB" is the fp32 weights only (409.6 MB = 390.6 MiB); the head's
#   training memory is dominated by the logits, which outgrow the weights as soon as a batch has more
#   than $d$ tokens.
# * The plain loss step holds three fp32 $N \times V$ matrices at its peak — also with bf16 logits.
# * Because $\partial\ell/\partial z = p - q$ row by row and every gradient is a sum over tokens, the
#   loss and its gradients can be computed a chunk at a time: same numbers, memory $C \cdot V$ instead
#   of $3\,N \cdot V$.
# %% [markdown] de
# Beim Head von DeepSeek-V3 würde der gewöhnliche Verlustschritt für einen solchen Micro-Batch
# 55,5 GB zusätzlich belegen; der blockweise Schritt belegt 4,91 GB, davon nur 264,8 MB für den
# Chunk-Puffer – der Rest sind die fp32-Gradienten der Gewichte und der Hidden States, die jedes
# Verfahren liefern muss. Und weil der Puffer nicht mit $N$ wächst, kostet ein größerer Micro-Batch
# nur den Term $N \cdot d$. (Das sind die Zahlen eines gewöhnlichen PyTorch-Schritts auf einem
# Gerät; ein echter DeepSeek-V3-Lauf verteilt seine Tensoren auf viele GPUs und nutzt eigene
# Kernels. Die Zahlen stammen aus den Formeln, die Abschnitt 4 bei $d = 64$ – wo die Terme $V d$
# und $N d$ klein sind – durch Messung prüft. Bei der Breite von DeepSeek-V3 fallen diese Terme ins
# Gewicht, und ob sie alle gleichzeitig mit den drei $N \times V$-Puffern im Speicher liegen, wurde
# nicht gemessen; dort sind die Zahlen als Schätzungen zu lesen, die auf etwa 10 % genau sind, nicht
# auf drei Stellen.)
#
# Das ist die Idee hinter der Fused Linear Cross-Entropy von Liger Kernel und Apples Cut Cross-Entropy; die
# Autoren von Cut Cross-Entropy berichten, dass sie mit fusionierten GPU-Kernels den Speicherbedarf der
# Verlustberechnung von Gemma 2 (2B) von 24 GB auf 1 MB senken. `linear_cross_entropy` ist die
# lesbare Fassung in reinem PyTorch.
#
# **Zusammenfassung.**
#
# * Die Angabe „Main Head 400 MB“ der Entwurfsnotiz umfasst nur die fp32-Gewichte (409,6 MB =
#   390,6 MiB); den Trainingsspeicher des Heads bestimmen die Logits, die größer als die Gewichte
#   werden, sobald ein Batch mehr als $d$ Tokens hat.
# * Der gewöhnliche Verlustschritt hält zum Zeitpunkt seines maximalen Speicherbedarfs drei fp32-Matrizen der Größe
#   $N \times V$ im Speicher – auch bei bf16-Logits.
# * Weil $\partial\ell/\partial z = p - q$ Zeile für Zeile gilt und jeder Gradient eine Summe über
#   Tokens ist, lassen sich Verlust und Gradienten blockweise berechnen: dieselben Zahlen, Speicher
#   $C \cdot V$ statt $3\,N \cdot V$.

# %% [markdown] en
# ## Check your understanding
#
# 1. From how many tokens on do the logits of one micro-batch take more memory than the head's weights?
#    <details><summary>Answer</summary>From N > d on: the logits are N·V numbers, the weights V·d.</details>
# 2. Why can the loss be computed chunk by chunk without any approximation?
#    <details><summary>Answer</summary>Each token's loss and its gradient p − q depend only on its own row of logits, and the weight gradient is a sum over tokens, which can be added up chunk by chunk.</details>
# 3. A chunked loss averages the chunks' means. When is that wrong?
#    <details><summary>Answer</summary>Whenever the chunks hold different numbers of valid targets (a shorter last chunk, uneven padding). Add up the chunks' sums and divide once by the total count.</details>
# 4. Roughly how much extra memory does the chunked loss need at its peak?
#    <details><summary>Answer</summary>About one chunk of fp32 logits and their gradient, a few times chunk_size·V·4 bytes, independent of the number of tokens N.</details>
# 5. Does chunking the loss reduce the memory of the head's weights, their gradient or AdamW's state?
#    <details><summary>Answer</summary>No. It removes only the (N, V) activations; weights, weight gradient and optimizer state stay as they are.</details>

# %% [markdown] de
# ## Verständnisfragen
#
# 1. Ab wie vielen Tokens belegen die Logits eines Micro-Batches mehr Speicher als die Gewichte des Heads?
#    <details><summary>Antwort</summary>Ab N > d: Die Logits sind N·V Zahlen, die Gewichte V·d.</details>
# 2. Warum lässt sich der Verlust ohne jede Näherung Chunk für Chunk berechnen?
#    <details><summary>Antwort</summary>Der Verlust jedes Tokens und sein Gradient p − q hängen nur von seiner eigenen Zeile der Logits ab, und der Gradient der Gewichte ist eine Summe über Tokens, die sich Chunk für Chunk aufaddieren lässt.</details>
# 3. Ein blockweise berechneter Verlust mittelt die Mittelwerte der Chunks. Wann ist das falsch?
#    <details><summary>Antwort</summary>Immer dann, wenn die Chunks unterschiedlich viele gültige Ziele enthalten (ein kürzerer letzter Chunk, ungleiches Padding). Addieren Sie die Summen der Chunks und teilen Sie einmal durch die Gesamtzahl.</details>
# 4. Wie viel zusätzlichen Speicher braucht der blockweise berechnete Verlust zum Zeitpunkt seines maximalen Speicherbedarfs ungefähr?
#    <details><summary>Antwort</summary>Etwa einen Chunk von fp32-Logits und ihren Gradienten, ein kleines Vielfaches von chunk_size·V·4 Byte, unabhängig von der Zahl der Tokens N.</details>
# 5. Verringert die blockweise Berechnung des Verlusts den Speicher für die Gewichte des Heads, ihren Gradienten oder den AdamW-Zustand?
#    <details><summary>Antwort</summary>Nein. Sie beseitigt nur die (N, V)-Aktivierungen; Gewichte, Gradient der Gewichte und Optimiererzustand bleiben, wie sie sind.</details>
