# %% [markdown] en
# # 03 · Multi-token prediction (MTP)
#
# A language model is normally trained to predict **one** token: at position $i$ it sees
# $t_1, \dots, t_i$ and is scored on $t_{i+1}$. *Multi-token prediction* adds training signals for
# tokens further ahead: a depth-$k$ prediction at position $i$ is scored on $t_{i+k+1}$.
# DeepSeek-V3 trains with one extra depth ($D = 1$) and describes its MTP modules in §2.2 of its
# technical report (arXiv:2412.19437, Eq. 21–25).
#
# This notebook works through the designs and their loss:
#
# 1. **Alignment** — which target does the main head and which does depth $k$ see at each position?
# 2. **The simple head** — one extra projection per depth on the same hidden state.
# 3. **The DeepSeek-V3 module** — Eq. 21–25, a diagram, and a parameter count.
# 4. **The loss** — $\lambda$ versus $\lambda / D$.
#
# Notebook 03b then trains with both designs, measures what they cost and uses depth 1 as a draft
# for speculative decoding.
#
# Every number in the text is printed by a cell or checked by an `assert`.
#
# **Goals.** After this notebook you can align the targets of MTP depth $k$, build the simple head
# and DeepSeek-V3's sequential modules and count their parameters, and choose between $\lambda$
# and $\lambda / D$.
# **Prerequisites.** Notebooks 00 and 01 (the floor $H$, `shift_labels`, the cross-entropy);
# notebook 02 for the shared head.
# **Time.** About 35 minutes of reading, plus two exercises; a few seconds to run.
# **Builds on.** Notebooks 00, 01 and 02.

# %% [markdown] de
# # 03 · Multi-Token-Prediction (MTP)
#
# Ein Sprachmodell lernt normalerweise, **ein** Token vorherzusagen: An Position $i$ sieht es
# $t_1, \dots, t_i$ und wird an $t_{i+1}$ gemessen. *Multi-Token-Prediction* (Mehr-Token-Vorhersage)
# fügt Trainingssignale für weiter entfernte Tokens hinzu: Eine Vorhersage der Tiefe $k$
# an Position $i$ wird an $t_{i+k+1}$ gemessen. DeepSeek-V3 trainiert mit einer zusätzlichen Tiefe
# ($D = 1$) und beschreibt seine MTP-Module in §2.2 des technischen Berichts
# (arXiv:2412.19437, Gl. 21–25).
#
# Das Notebook behandelt die beiden Bauweisen und ihren Verlust:
#
# 1. **Ausrichtung** – welches Ziel sieht an jeder Position der Haupt-Head, welches die Tiefe $k$?
# 2. **Der einfache Head** – eine zusätzliche Projektion pro Tiefe auf demselben
#    Hidden State.
# 3. **Das DeepSeek-V3-Modul** – Gl. 21–25, ein Diagramm und eine Parameterzählung.
# 4. **Der Verlust** – $\lambda$ gegenüber $\lambda / D$.
#
# Notebook 03b trainiert anschließend mit beiden Bauweisen, misst, was sie kosten, und verwendet
# Tiefe 1 als Draft-Modell für spekulatives Dekodieren.
#
# Jede Zahl im Text wird von einer Zelle ausgegeben oder mit einem `assert` geprüft.
#
# **Lernziele.** Nach diesem Notebook können Sie die Ziele der MTP-Tiefe $k$ ausrichten, den
# einfachen Head und die sequenziellen Module von DeepSeek-V3 bauen und ihre Parameter zählen und
# zwischen $\lambda$ und $\lambda / D$ wählen.
# **Voraussetzungen.** Notebooks 00 und 01 (die Untergrenze $H$, `shift_labels`, die Kreuzentropie);
# Notebook 02 für den geteilten Head.
# **Zeit.** Etwa 35 Minuten Lesezeit, dazu zwei Aufgaben; einige Sekunden Laufzeit.
# **Grundlage.** Notebooks 00, 01 und 02.
# **Sprache.** Abbildungen, Code, Code-Kommentare und Zellausgaben sind in beiden Sprachfassungen
# englisch; der Text erklärt, was sie zeigen.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from aptt_edu import shift_labels
from aptt_edu.exercises import check
from aptt_edu.heads.deepseek_mtp import DeepSeekMTP
from aptt_edu.heads.language_modeling import (
    CombinedLMHead,
    LanguageModelingHead,
    MultiTokenPredictionHead,
)
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss
from aptt_edu.plotting import draw_deepseek_mtp

torch.manual_seed(0)
torch.set_num_threads(1)  # one thread: the same float results on any machine, steadier timings


# %% en tags=["language"]
LANG = "en"  # the language of the exercises' feedback (the German notebook sets "de")

# %% de tags=["language"]
LANG = "de"  # die Sprache der Rückmeldungen zu den Aufgaben (das englische Notebook setzt "en")
# %% [markdown] en
# ## 1. Alignment: who predicts what?
#
# Take one short sentence and a vocabulary of its words. `shift_labels` builds the labels of the
# whole package: `labels[i]` is the token that must follow position `i`, and the last position
# gets the ignore index `-100`. The main head at position $i$ is scored on `labels[i]` $= t_{i+1}$;
# MTP depth $k$ at position $i$ is scored on `labels[i+k]` $= t_{i+k+1}$, so its logits have only
# $T - k$ positions and its targets are `labels[:, k:]`.

# %% [markdown] de
# ## 1. Ausrichtung: Wer sagt was vorher?
#
# Wir nehmen einen kurzen Satz und ein Vokabular aus seinen Wörtern. `shift_labels` baut die Labels
# so, wie das ganze Paket sie erwartet: `labels[i]` ist das Token, das auf Position `i` folgen muss;
# die letzte Position bekommt den Ignore-Index `-100`. Der Haupt-Head wird an Position $i$ an
# `labels[i]` $= t_{i+1}$ gemessen, MTP-Tiefe $k$ an Position $i$ an `labels[i+k]` $= t_{i+k+1}$.
# Die Logits der Tiefe $k$ haben deshalb nur $T - k$ Positionen, ihre Ziele sind `labels[:, k:]`.

# %%
words = "the cat sat on the mat and slept".split()
vocab = sorted(set(words))
V = len(vocab)  # vocabulary size
input_ids = torch.tensor([[vocab.index(w) for w in words]])  # (B=1, T)
T = input_ids.shape[1]
D = 2  # MTP depths shown in the table
inputs, labels = shift_labels(input_ids)  # labels[0, i] = input_ids[0, i + 1], last = -100


def word(token_id: int) -> str:
    return "--" if token_id == -100 else vocab[token_id]


header = ["i", "input t_i", "main: labels[i]", "k=1: labels[i+1]", "k=2: labels[i+2]"]
print(" | ".join(f"{h:>16}" for h in header))
for i in range(T):
    row = [str(i), words[i]]
    for k in range(D + 1):  # k = 0 is the main head
        # depth k has logits only at positions i < T - k; beyond that there is no cell at all
        row.append(word(int(labels[0, i + k])) if i + k < T else "(no logit)")
    print(" | ".join(f"{c:>16}" for c in row))

# %% [markdown] en
# Read a row: at position 2 the model has seen "the cat sat". The main head must say "on", depth 1
# must say "the" (two ahead), depth 2 must say "mat" (three ahead). Depth $k$ has no logit at the
# last $k$ positions, and its last logit has the target `--` (there is no $t_{T+1}$ in this window),
# so depth $k$ scores $T - k - 1$ targets.
#
# ### The aligned loss by hand
#
# With random logits we compute each term from the token ids themselves — no `labels` tensor,
# only "position $i$, depth $k$ ⇒ token $i + k + 1$" — and compare with
# `MultiTokenPredictionLoss`.

# %% [markdown] de
# Lesen wir eine Zeile: An Position 2 hat das Modell „the cat sat“ gesehen. Der Haupt-Head muss „on“
# sagen, Tiefe 1 „the“ (zwei Tokens voraus), Tiefe 2 „mat“ (drei Tokens voraus). An den letzten $k$ Positionen
# hat Tiefe $k$ gar keine Logits, und ihr letzter Logit hat das Ziel `--` (in diesem Fenster gibt es
# kein $t_{T+1}$). Tiefe $k$ wird also an $T - k - 1$ Zielen gemessen.
#
# ### Der ausgerichtete Verlust von Hand
#
# Mit zufälligen Logits berechnen wir jeden Term direkt aus den Token-IDs – ohne `labels`-Tensor,
# nur mit der Regel „Position $i$, Tiefe $k$ ⇒ Token $i + k + 1$“ – und vergleichen mit
# `MultiTokenPredictionLoss`.

# %%
g = torch.Generator().manual_seed(0)
main_logits = torch.randn(1, T, V, generator=g)  # (B, T, V)
mtp_logits = [torch.randn(1, T - k, V, generator=g) for k in range(1, D + 1)]  # (B, T-k, V)


def nll_by_hand(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of -log p(t_{i+k+1}) over the positions i that have such a token; logits (T-k, V)."""
    terms = []
    for i in range(logits.shape[0]):
        j = i + k + 1  # index of the target token
        if j >= T:
            continue  # no token that far ahead in this window
        # −log p_{i,y} = log Σ_v exp(z_{i,v}) − z_{i,y}
        terms.append(torch.logsumexp(logits[i], dim=0) - logits[i, input_ids[0, j]])
    return torch.stack(terms).mean()


lam = 0.3
by_hand = [nll_by_hand(main_logits[0], 0)] + [nll_by_hand(mtp_logits[k - 1][0], k) for k in (1, 2)]
total_by_hand = by_hand[0] + lam * (by_hand[1] + by_hand[2])

loss_fn = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=lam)
total, parts = loss_fn(main_logits, mtp_logits, labels)
for name, mine in zip(["main_loss", "mtp_loss_1", "mtp_loss_2"], by_hand, strict=True):
    print(f"{name:<11} by hand {mine.item():.4f}   library {parts[name].item():.4f}")
    assert torch.allclose(mine, parts[name], atol=1e-6)
print(f"total_loss  by hand {total_by_hand.item():.4f}   library {total.item():.4f}")
assert torch.allclose(total_by_hand, total, atol=1e-6)

# %% [markdown] en
# The classic bug is to score depth 1 against the *main* labels `labels[:, :-1]`: it silently
# trains the extra head to repeat the main head's target. The number differs, so a test catches it:

# %% [markdown] de
# Der klassische Fehler: Tiefe 1 an den Labels des *Haupt*-Heads `labels[:, :-1]` messen. Dann
# lernt der zusätzliche Head stillschweigend nur das Ziel des Haupt-Heads. Die Zahl ist eine andere,
# ein Test findet den Fehler also:

# %%
wrong = nn.functional.cross_entropy(mtp_logits[0][0], labels[0, :-1], ignore_index=-100)
print(f"depth 1 scored on labels[:, 1:]  (right): {parts['mtp_loss_1'].item():.4f}")
print(f"depth 1 scored on labels[:, :-1] (wrong): {wrong.item():.4f}")
assert not torch.allclose(wrong, parts["mtp_loss_1"])

# %% [markdown] en
# ### Exercise: the targets of depth k
#
# Write `my_mtp_targets(labels, k)`: from shifted labels `(B, T)` the targets `(B, T-k)` that
# depth $k$'s logits are scored on, position by position. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Die Ziele der Tiefe k
#
# Schreiben Sie `my_mtp_targets(labels, k)`: aus verschobenen Labels `(B, T)` die Ziele
# `(B, T-k)`, an denen die Logits der Tiefe $k$ Position für Position gemessen werden. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_mtp_targets(labels, k):
    """(B, T) shifted labels -> (B, T-k): what depth k predicts at positions 0 .. T-k-1."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_mtp_targets(labels, k):
    return labels[:, k:]  # position i of depth k predicts labels[:, i + k]

# %%
result = check("mtp_targets", my_mtp_targets, lang=LANG)

# %% [markdown] en
# ## 2. The simple head: one projection per depth
#
# The design note's `MultiTokenPredictionHead` gives each depth $k$ its own $(V, d)$ matrix $W_k$
# and applies it to the **same** final hidden state $h_i$ that the main head reads:
#
# $$z^{k}_i = W_k\, h_i, \qquad i = 1, \dots, T - k .$$
#
# `CombinedLMHead` cuts the hidden states to $T - k$ positions and calls it. We recompute the
# logits with a plain matrix product:

# %% [markdown] de
# ## 2. Der einfache Head: eine Projektion pro Tiefe
#
# Der `MultiTokenPredictionHead` der Entwurfsnotiz gibt jeder Tiefe $k$ eine eigene $(V, d)$-Matrix
# $W_k$ und wendet sie auf **denselben** letzten Hidden State $h_i$ an, den
# auch der Haupt-Head liest:
#
# $$z^{k}_i = W_k\, h_i, \qquad i = 1, \dots, T - k .$$
#
# `CombinedLMHead` kürzt die Hidden States auf $T - k$ Positionen und ruft ihn auf. Wir rechnen
# die Logits mit einem einfachen Matrixprodukt nach:

# %%
d = 16  # hidden width of this small demo
hidden = torch.randn(1, T, d, generator=g)  # (B, T, d), stands in for a Transformer's output
head = CombinedLMHead(d, V, use_mtp=True, mtp_depth=D, tie_weights=False).train()
main_z, mtp_z = head(hidden)  # (B, T, V), [(B, T-1, V), (B, T-2, V)]
assert mtp_z is not None
for k in range(1, D + 1):
    W_k = head.mtp_head.heads[k - 1].weight  # (V, d)
    z_k = hidden[:, : T - k] @ W_k.T  # (B, T-k, V): position i reads h_i, the main head's input
    assert torch.allclose(z_k, mtp_z[k - 1], atol=1e-6)
    print(f"depth {k}: logits {tuple(mtp_z[k - 1].shape)} = h[:, :T-{k}] @ W_{k}^T  ✓")
print("eval mode returns:", [None if z is None else tuple(z.shape) for z in head.eval()(hidden)])

# %% [markdown] en
# Two properties matter later:
#
# * Depth 1 at position $i$ must guess $t_{i+2}$ **without knowing $t_{i+1}$**: it reads the same
#   $h_i$ as the main head. At best it can learn the marginal $p(t_{i+2} \mid t_{\le i})$, which
#   averages over every possible $t_{i+1}$. Its loss floor is therefore a *two-step* conditional
#   entropy, higher than the next-token entropy rate.
# * Each depth costs $V \cdot d$ new parameters — $D \cdot V \cdot d$ in total, as large as a second
#   (untied) output head per depth.

# %% [markdown] de
# Zwei Eigenschaften brauchen wir später:
#
# * Tiefe 1 muss an Position $i$ das Token $t_{i+2}$ raten, **ohne $t_{i+1}$ zu kennen**: Sie liest
#   dasselbe $h_i$ wie der Haupt-Head. Bestenfalls lernt sie die Randverteilung
#   $p(t_{i+2} \mid t_{\le i})$, die über alle möglichen $t_{i+1}$ mittelt. Ihre
#   Entropie-Untergrenze ist deshalb eine bedingte *Zwei-Schritt*-Entropie und liegt über der
#   Entropierate für das nächste Token.
# * Jede Tiefe kostet $V \cdot d$ neue Parameter – insgesamt $D \cdot V \cdot d$, pro Tiefe so viel
#   wie eine zweite (ungebundene) Ausgabeschicht.

# %%
n_main = sum(p.numel() for p in head.lm_head.parameters())
n_mtp = sum(p.numel() for p in head.mtp_head.parameters())
print(f"main head: {n_main} = V*d;  simple MTP head: {n_mtp} = D*V*d = {D}*{V}*{d}")
assert n_main == V * d and n_mtp == D * V * d

# %% [markdown] en
# ## 3. The DeepSeek-V3 module: sequential, with shared embedding and head
#
# DeepSeek-V3 (§2.2) keeps "the complete causal chain at each prediction depth". Module $k$ has a
# projection $M_k \in \mathbb{R}^{d \times 2d}$ and one Transformer block $\mathrm{TRM}_k$; the
# embedding $\mathrm{Emb}$ and the output head $\mathrm{OutHead}$ are **shared** with the main
# model. In the report's 1-based notation, with $h^0_i$ the main model's hidden state:
#
# $$h^{\prime k}_i = M_k\,\big[\mathrm{RMSNorm}(h^{k-1}_i);\ \mathrm{RMSNorm}(\mathrm{Emb}(t_{i+k}))\big] \tag{21}$$
#
# $$h^{k}_{1:T-k} = \mathrm{TRM}_k\big(h^{\prime k}_{1:T-k}\big) \tag{22}$$
#
# $$P^{k}_{i+k+1} = \mathrm{OutHead}\big(h^{k}_i\big) \tag{23}$$
#
# $$\mathcal{L}^{k}_{\mathrm{MTP}} = \mathrm{CrossEntropy}\big(P^{k}_{2+k:T+1},\ t_{2+k:T+1}\big) = -\frac{1}{T}\sum_{i=2+k}^{T+1} \log P^{k}_i[t_i] \tag{24}$$
#
# $$\mathcal{L}_{\mathrm{MTP}} = \frac{\lambda}{D}\sum_{k=1}^{D} \mathcal{L}^{k}_{\mathrm{MTP}} \tag{25}$$
#
# $[\cdot\,;\cdot]$ is concatenation. The difference to the simple head is in Eq. 21: depth $k$
# **reads the true token $t_{i+k}$** (teacher forcing), so depth 1 predicts $t_{i+2}$ knowing
# $t_{i+1}$ — the same information the main model has one position later.
#
# Three details the report leaves open are fixed by the weights DeepSeek released and by the code
# that trains and serves them (Megatron-LM, vLLM, SGLang); the library follows them:
#
# * **Order of the concatenation.** Eq. 21 writes $h^{k-1}$ first; the released projection
#   (`eh_proj`, "embedding–hidden") takes the embedding first. For training from scratch both are
#   the same model: swapping the two column halves of $M_k$ turns one into the other.
# * **Which $h^0$.** Depth 1 reads the main model's hidden state *after* its final RMSNorm — the
#   tensor the main head reads.
# * **What the chain carries.** Each depth has its own RMSNorm before the shared head; depth $k+1$
#   reads $h^k$ after that norm, the tensor depth $k$'s logits come from.
#
# The parts carry the released names: `enorm`, `hnorm`, `eh_proj`, `block` ($\mathrm{TRM}_k$) and
# `shared_head.norm`. $\mathrm{TRM}_k$ here is this course's small Transformer block; DeepSeek's is
# a full decoder layer with its attention variant (MLA) and mixture of experts.

# %% [markdown] de
# ## 3. Das DeepSeek-V3-Modul: sequenziell, mit geteiltem Embedding und geteiltem Head
#
# DeepSeek-V3 (§2.2) behält die vollständige kausale Kette auf jeder Vorhersagetiefe („keep the
# complete causal chain at each prediction depth“). Modul $k$
# hat eine Projektion $M_k \in \mathbb{R}^{d \times 2d}$ und einen Transformer-Block
# $\mathrm{TRM}_k$; das Embedding $\mathrm{Emb}$ und die Ausgabeschicht
# $\mathrm{OutHead}$ werden mit dem Hauptmodell **geteilt**. In der 1-basierten Schreibweise des
# Berichts, mit $h^0_i$ als Hidden State des Hauptmodells:
#
# $$h^{\prime k}_i = M_k\,\big[\mathrm{RMSNorm}(h^{k-1}_i);\ \mathrm{RMSNorm}(\mathrm{Emb}(t_{i+k}))\big] \tag{21}$$
#
# $$h^{k}_{1:T-k} = \mathrm{TRM}_k\big(h^{\prime k}_{1:T-k}\big) \tag{22}$$
#
# $$P^{k}_{i+k+1} = \mathrm{OutHead}\big(h^{k}_i\big) \tag{23}$$
#
# $$\mathcal{L}^{k}_{\mathrm{MTP}} = \mathrm{CrossEntropy}\big(P^{k}_{2+k:T+1},\ t_{2+k:T+1}\big) = -\frac{1}{T}\sum_{i=2+k}^{T+1} \log P^{k}_i[t_i] \tag{24}$$
#
# $$\mathcal{L}_{\mathrm{MTP}} = \frac{\lambda}{D}\sum_{k=1}^{D} \mathcal{L}^{k}_{\mathrm{MTP}} \tag{25}$$
#
# $[\cdot\,;\cdot]$ ist die Verkettung. Der Unterschied zum einfachen Head steckt in Gl. 21:
# Tiefe $k$ **liest das wahre Token $t_{i+k}$** (Teacher Forcing). Tiefe 1 sagt $t_{i+2}$ also in
# Kenntnis von $t_{i+1}$ vorher – mit derselben Information, die das Hauptmodell eine Position
# später hat.
#
# Drei Einzelheiten lässt der Bericht offen; festgelegt werden sie durch die von DeepSeek
# veröffentlichten Gewichte und durch den Code, der mit ihnen trainiert und sie für die Inferenz bereitstellt (Megatron-LM,
# vLLM, SGLang). Die Bibliothek folgt ihnen:
#
# * **Reihenfolge der Verkettung.** In Gl. 21 steht $h^{k-1}$ zuerst; die veröffentlichte
#   Projektion (`eh_proj`, „Embedding-Hidden“) nimmt das Embedding zuerst. Für ein Training von
#   Grund auf ist das dasselbe Modell: Vertauscht man die beiden Spaltenhälften von $M_k$, wird
#   das eine zum anderen.
# * **Welches $h^0$.** Tiefe 1 liest den Hidden State des Hauptmodells *nach* seiner letzten
#   RMSNorm – denselben Tensor, den der Haupt-Head liest.
# * **Was die Kette weitergibt.** Jede Tiefe hat vor dem geteilten Head eine eigene RMSNorm;
#   Tiefe $k+1$ liest $h^k$ nach dieser Norm, also den Tensor, aus dem die Logits der Tiefe $k$
#   entstehen.
#
# Die Bausteine tragen die Namen der veröffentlichten Gewichte: `enorm`, `hnorm`, `eh_proj`,
# `block` ($\mathrm{TRM}_k$) und `shared_head.norm`. $\mathrm{TRM}_k$ ist hier der kleine
# Transformer-Block dieses Kurses; bei DeepSeek ist es eine vollständige Decoder-Schicht mit DeepSeeks
# eigener Attention-Variante (MLA) und Mixture of Experts.

# %%
# the drawing code lives in aptt_edu/plotting.py (draw_deepseek_mtp), out of the lesson's way
draw_deepseek_mtp(depth=2)
plt.show()

# %% [markdown] en
# *Figure:* DeepSeek-V3's multi-token prediction (§2.2, Eq. 21–23), drawn for $D = 2$. Left, the
# main model: tokens, embedding, $L$ Transformer blocks, $h^0_i$, output head, the prediction of
# $t_{i+1}$. Right, the MTP modules $k = 1, 2$: each normalises the embedding of the true token
# $t_{i+k}$ and the previous stage's hidden state $h^{k-1}_i$ with RMSNorm, concatenates the two,
# projects with $M_k$, passes the result through a block $\mathrm{TRM}_k$ and predicts $t_{i+k+1}$
# through the output head. Dashed orange: the same weight matrix, shared with the main model.
# %% [markdown] de
# *Abbildung:* die Multi-Token-Prediction von DeepSeek-V3 (§2.2, Gl. 21–23), gezeichnet für $D = 2$.
# Links das Hauptmodell (`main model`: Tokens, Embedding, $L$ Transformer-Blöcke, $h^0_i$,
# Ausgabeschicht, Vorhersage von $t_{i+1}$), rechts die MTP-Module $k = 1, 2$ (`MTP module k`).
# Jedes Modul normiert das Embedding des wahren Tokens $t_{i+k}$ (`true token`) und den Hidden State
# $h^{k-1}_i$ der vorigen Stufe mit RMSNorm, verkettet beide, projiziert mit $M_k$, schickt das
# Ergebnis durch einen Block $\mathrm{TRM}_k$ und sagt über die Ausgabeschicht $t_{i+k+1}$ vorher
# (`predicts`). Orange gestrichelt (`dashed orange`): dieselbe Gewichtsmatrix, mit dem Hauptmodell
# geteilt (`shared`).

# %% [markdown] en
# ### The chain by hand
#
# We build `DeepSeekMTP` with $D = 2$, hand it a stand-in $h^0$, the token ids, and the main
# model's embedding and head, then redo Eq. 21–23 step by step: RMSNorm written out, the
# concatenation, the product with $M_k$, the block, and the shared head.
# %% [markdown] de
# ### Die Kette von Hand
#
# Wir bauen `DeepSeekMTP` mit $D = 2$, geben ein Ersatz-$h^0$, die Token-IDs sowie Embedding und
# Head des Hauptmodells hinein und rechnen Gl. 21–23 Schritt für Schritt nach: RMSNorm
# ausgeschrieben, Verkettung, Produkt mit $M_k$, Block und geteilter Head.

# %%
torch.manual_seed(0)
emb = nn.Embedding(V, d)  # the main model's embedding (shared)
out_head = LanguageModelingHead(d, V)  # the main model's output head (shared)
mtp = DeepSeekMTP(d_model=d, n_heads=2, mtp_depth=D)
h0 = torch.randn(1, T, d, generator=g)  # (B, T, d), stands in for the main model's h^0
lib_logits = mtp(h0, input_ids, emb, out_head)  # [(B, T-1, V), (B, T-2, V)]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # RMSNorm(x) = x / √(mean(x²) + ε) · g
    return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


h = h0
for k, m in enumerate(mtp.depths, start=1):
    h_prev = h[:, : T - k]  # h^{k-1}_i for the T-k positions that have a token k ahead, (B, T-k, d)
    e = emb(input_ids[:, k:])  # Emb(t_{i+k}), (B, T-k, d)
    # Eq. 21, embedding first as in the released weights: [RMSNorm(Emb(t_{i+k})); RMSNorm(h^{k-1}_i)]
    cat = torch.cat([rms_norm(e, m.enorm.weight, m.enorm.eps),
                     rms_norm(h_prev, m.hnorm.weight, m.hnorm.eps)], dim=-1)  # (B, T-k, 2d)
    h_prime = cat @ m.eh_proj.weight.T  # M_k has shape (d, 2d) -> (B, T-k, d)
    h = m.block(h_prime)  # Eq. 22: one causal pre-norm Transformer block, (B, T-k, d)
    norm = m.shared_head.norm  # the depth's own final norm; its output also feeds depth k+1
    h = rms_norm(h, norm.weight, norm.eps)  # (B, T-k, d)
    z = h @ out_head.weight.T  # Eq. 23: the *shared* head, (B, T-k, V)
    assert torch.allclose(z, lib_logits[k - 1], atol=1e-5)
    print(f"depth {k}: M_k {tuple(m.eh_proj.weight.shape)}, logits {tuple(z.shape)}  == library ✓")

# %% [markdown] en
# The embedding and the head are *passed in*, not owned: they appear in neither the module's
# parameters nor its `state_dict`, yet the MTP loss sends gradients into both.

# %% [markdown] de
# Embedding und Head werden *übergeben*, gehören dem Modul aber nicht: Sie stehen weder in den Parametern des
# Moduls noch in seinem `state_dict` – trotzdem schickt der MTP-Verlust Gradienten in beide.

# %%
own = {id(p) for p in mtp.parameters()}
assert id(emb.weight) not in own and id(out_head.weight) not in own
assert all(V not in t.shape for t in mtp.state_dict().values())  # no (V, d) tensor is saved
mtp_only = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=1.0)
_, mtp_parts = mtp_only(main_logits, lib_logits, labels)
mtp_parts["mtp_loss_1"].backward()  # the depth-1 term alone
print(f"|grad| on shared head:      {out_head.weight.grad.norm().item():.4f}")
print(f"|grad| on shared embedding: {emb.weight.grad.norm().item():.4f}")
assert out_head.weight.grad.norm() > 0 and emb.weight.grad.norm() > 0

# %% [markdown] en
# ### Counting parameters
#
# Per depth the DeepSeek module adds $M_k$ ($2d^2$), one block (attention $4d^2$ + MLP $8d^2$ +
# two norms $2d$) and three RMSNorm gains ($3d$): $14d^2 + 5d$, **no term in $V$**. The simple
# head adds $V \cdot d$ per depth. We count real modules; for the large sizes they are built on
# PyTorch's `meta` device, which creates shapes without allocating memory. The sizes are our demo,
# the design note's two examples (note A: $V = 1000, d = 512$; note B: $V = 50\,000, d = 2048$) and
# DeepSeek-V3's vocabulary and width ($V = 129\,280$, $d = 7168$; its real MTP block uses a
# mixture-of-experts MLP, so its module has 11.5 B own parameters, but still no $V$-sized ones —
# the 0.9 B embedding and 0.9 B head are shared, per `README_WEIGHTS.md` of the release).

# %% [markdown] de
# ### Parameter zählen
#
# Pro Tiefe fügt das DeepSeek-Modul $M_k$ ($2d^2$), einen Block (Attention $4d^2$ + MLP $8d^2$ +
# zwei Normen $2d$) und drei RMSNorm-Gewichte ($3d$) hinzu: $14d^2 + 5d$, **kein Term mit $V$**.
# Der einfache Head fügt pro Tiefe $V \cdot d$ hinzu. Wir zählen echte Module; die großen werden
# auf PyTorchs `meta`-Gerät gebaut, das nur Formen anlegt und keinen Speicher belegt. Die Größen
# sind unser Demo-Beispiel, die beiden Beispiele der Entwurfsnotiz (`note A`: $V = 1000, d = 512$;
# `note B`: $V = 50\,000, d = 2048$) sowie Vokabular und Breite von DeepSeek-V3 ($V = 129\,280$, $d = 7168$;
# sein echter MTP-Block nutzt ein Mixture-of-Experts-MLP, daher hat sein Modul 11,5 Mrd. eigene
# Parameter – aber ebenfalls keine $V$-großen: Embedding (0,9 Mrd.) und Head (0,9 Mrd.) werden laut
# `README_WEIGHTS.md` der Veröffentlichung geteilt).

# %%
def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


sizes = {"demo": (V, d), "note A": (1000, 512), "note B": (50_000, 2048),
         "V3 width": (129_280, 7168)}
print(f"{'':>9} {'V':>8} {'d':>5} | {'simple head D=1':>16} | {'DeepSeek D=1':>13} | "
      f"{'DeepSeek/simple':>15}")
for name, (v, dd) in sizes.items():
    with torch.device("meta"):  # shapes only, no memory
        simple = MultiTokenPredictionHead(dd, v, mtp_depth=1)
        deep = DeepSeekMTP(dd, n_heads=2, mtp_depth=1)
    assert count(simple) == v * dd  # D * V * d with D = 1
    assert count(deep) == 14 * dd**2 + 5 * dd  # no V anywhere
    assert all(v not in p.shape for p in deep.parameters())
    print(f"{name:>9} {v:>8} {dd:>5} | {count(simple):>16,} | {count(deep):>13,} | "
          f"{count(deep) / count(simple):>15.2f}")

# %% [markdown] en
# With one depth the simple head adds a second full output head. Which of the two is larger
# depends on $V / d$: with a small vocabulary (demo, note A) the DeepSeek module's $14d^2$ dominate,
# with a large one (note B, V3 width) it is the smaller of the two (last column). What differs in
# kind is what the parameters buy: a whole Transformer block that can use the next token, instead of
# a second projection onto the vocabulary.

# %% [markdown] de
# Mit einer Tiefe fügt der einfache Head eine zweite komplette Ausgabeschicht hinzu. Welche Variante
# größer ist, hängt von $V / d$ ab: Bei kleinem Vokabular (Demo, `note A`) überwiegen die $14d^2$
# des DeepSeek-Moduls, bei großem (`note B`, V3-Breite) ist das DeepSeek-Modul das kleinere (letzte
# Spalte). Grundsätzlich anders ist, wofür die Parameter eingesetzt werden: ein ganzer Transformer-Block, der das
# nächste Token nutzen kann, statt einer zweiten Projektion auf das Vokabular.

# %% [markdown] en
# ## 4. The loss: $\lambda$ or $\lambda / D$?
#
# `MultiTokenPredictionLoss` adds the depths either with weight $\lambda$ each (the design note:
# $\mathcal{L} = \mathcal{L}_\text{main} + \lambda \sum_k \mathcal{L}^k$) or, with
# `average_over_depth=True`, with $\lambda / D$ each — DeepSeek-V3's Eq. 25. The first form makes
# the MTP share of the gradient grow with $D$; the second keeps it fixed while $D$ changes. For
# $D = 1$ the two agree, and DeepSeek-V3 trains with $D = 1$ and $\lambda = 0.3$ for the first
# 10 T tokens, then $\lambda = 0.1$ for the remaining 4.8 T (§4.2).

# %% [markdown] de
# ## 4. Der Verlust: $\lambda$ oder $\lambda / D$?
#
# `MultiTokenPredictionLoss` addiert die Tiefen entweder jeweils mit dem Gewicht $\lambda$ (so die
# Entwurfsnotiz: $\mathcal{L} = \mathcal{L}_\text{main} + \lambda \sum_k \mathcal{L}^k$) oder, mit
# `average_over_depth=True`, jeweils mit $\lambda / D$ – Gl. 25 von DeepSeek-V3. Bei der ersten
# Form wächst der MTP-Anteil am Gradienten mit $D$, bei der zweiten bleibt er fest, wenn sich $D$
# ändert. Für $D = 1$ stimmen beide überein; DeepSeek-V3 trainiert mit $D = 1$ und $\lambda = 0{,}3$
# für die ersten 10 Billionen Tokens, danach mit $\lambda = 0{,}1$ für die restlichen 4,8 Billionen
# (§4.2).

# %%
sum_form = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=lam)
avg_form = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=lam, average_over_depth=True)
t_sum, p_sum = sum_form(main_logits, mtp_logits, labels)
t_avg, p_avg = avg_form(main_logits, mtp_logits, labels)
L_main, L1, L2 = (p_sum[k] for k in ("main_loss", "mtp_loss_1", "mtp_loss_2"))
print(f"L_main = {L_main.item():.4f},  L^1 = {L1.item():.4f},  L^2 = {L2.item():.4f}")
print(f"lambda   * (L^1 + L^2): weight per depth {sum_form.depth_weight:.2f} -> total {t_sum.item():.4f}")
print(f"lambda/D * (L^1 + L^2): weight per depth {avg_form.depth_weight:.2f} -> total {t_avg.item():.4f}")
assert torch.allclose(t_sum, L_main + lam * (L1 + L2))
assert torch.allclose(t_avg, L_main + lam / D * (L1 + L2))
one = [mtp_logits[0]]
assert torch.allclose(
    MultiTokenPredictionLoss(V, 1, lam)(main_logits, one, labels)[0],
    MultiTokenPredictionLoss(V, 1, lam, average_over_depth=True)(main_logits, one, labels)[0],
)  # D = 1: both forms are the same

# %% [markdown] en
# **The $1/T$ in Eq. 24.** The report divides each depth's summed log-loss by the sequence length
# $T$, although depth $k$ has fewer targets. The library takes the mean over the valid targets
# instead (which also skips padding). The two differ by the factor (valid targets)$/T$. The report's
# window includes $t_{T+1}$, so its depth $k$ has $T-k$ targets; a window of $T$ input tokens after
# `shift_labels` has $T-k-1$. For $T = 4096$ and $D = 1$ that is a negligible $4094/4096$, in our
# 8-token sentence a visible factor:

# %% [markdown] de
# **Das $1/T$ in Gl. 24.** Der Bericht teilt die summierte negative Log-Likelihood jeder Tiefe durch die
# Sequenzlänge $T$, obwohl Tiefe $k$ weniger Ziele hat. Die Bibliothek nimmt stattdessen den
# Mittelwert über die gültigen Ziele (und überspringt damit auch Padding). Beide unterscheiden sich
# um den Faktor (gültige Ziele)$/T$. Das Fenster des Berichts schließt $t_{T+1}$ ein, seine Tiefe $k$
# hat also $T-k$ Ziele; ein Fenster aus $T$ Eingabetokens nach `shift_labels` hat $T-k-1$. Für
# $T = 4096$ und $D = 1$ ist das ein vernachlässigbarer Faktor $4094/4096$, in unserem Satz aus
# 8 Tokens ein sichtbarer:

# %%
for k in (1, 2):
    targets = labels[0, k:]  # (T-k,)
    valid = targets != -100
    log_p = mtp_logits[k - 1][0].log_softmax(-1)  # (T-k, V)
    summed = -log_p[valid].gather(1, targets[valid, None]).sum()
    eq24 = summed / T  # the report's normaliser
    lib = p_sum[f"mtp_loss_{k}"]  # mean over valid targets
    print(f"k={k}: Eq. 24 (1/T) {eq24.item():.4f}   library (1/{int(valid.sum())}) {lib.item():.4f}"
          f"   ratio {(eq24 / lib).item():.4f} = {int(valid.sum())}/{T}")
    assert torch.allclose(eq24, lib * valid.sum() / T)

# %% [markdown] en
# ### Exercise: the MTP loss
#
# Write `my_mtp_loss(main_logits, mtp_logits, labels, mtp_lambda)`: the main cross-entropy plus
# $\lambda$ times the sum of the depths' cross-entropies (each a mean over its valid targets), with
# depth $k$'s logits `mtp_logits[k-1]` of shape `(B, T-k, V)`. This is the form with $\lambda$ per
# depth, `average_over_depth=False`. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Der MTP-Verlust
#
# Schreiben Sie `my_mtp_loss(main_logits, mtp_logits, labels, mtp_lambda)`: die
# Haupt-Kreuzentropie plus $\lambda$ mal die Summe der Kreuzentropien der Tiefen (jede ein
# Mittelwert über ihre gültigen Ziele); die Logits der Tiefe $k$ sind `mtp_logits[k-1]` mit der Form
# `(B, T-k, V)`. Das ist die Form mit $\lambda$ pro Tiefe, `average_over_depth=False`. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_mtp_loss(main_logits, mtp_logits, labels, mtp_lambda):
    """(B, T, V), [(B, T-k, V) for k = 1..D], (B, T), lambda -> main + lambda * sum_k L_k."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_mtp_loss(main_logits, mtp_logits, labels, mtp_lambda):
    def ce(logits, targets):  # mean NLL over the valid targets
        V = logits.shape[-1]
        return nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))

    total = ce(main_logits, labels)
    for k, logits_k in enumerate(mtp_logits, start=1):
        total = total + mtp_lambda * ce(logits_k, labels[:, k:])  # depth k: targets labels[:, k:]
    return total

# %%
result = check("mtp_loss", my_mtp_loss, lang=LANG)

# %% [markdown] en
# ## 5. What to remember
#
# * **Alignment:** depth $k$ at position $i$ is scored on $t_{i+k+1}$ = `labels[:, i+k]`; its logits
#   have $T - k$ positions and its targets are `labels[:, k:]`. Scoring it on the main labels is a
#   silent bug.
# * **Simple head** (design note): one $(V, d)$ projection per depth on the same $h_i$ —
#   $D \cdot V \cdot d$ parameters, and it must guess past the unseen $t_{i+1}$.
# * **DeepSeek-V3 module** (§2.2, Eq. 21–25): RMSNorm both inputs, concatenate, $M_k$, one block,
#   the *shared* head — no $V$-sized weights; it reads the true $t_{i+k}$ and keeps the causal chain.
# * **Loss:** $\lambda \sum_k$ or DeepSeek's $\frac{\lambda}{D} \sum_k$ (`average_over_depth=True`);
#   identical for $D = 1$. Eq. 24 divides by $T$, the library by the number of valid targets.
#
# Notebook 03b trains both designs on the toy language, measures what they cost and what depth 1 is
# worth as a draft.

# %% [markdown] de
# ## 5. Was bleibt
#
# * **Ausrichtung:** Tiefe $k$ wird an Position $i$ an $t_{i+k+1}$ = `labels[:, i+k]` gemessen;
#   ihre Logits haben $T - k$ Positionen, ihre Ziele sind `labels[:, k:]`. Sie an den Labels des
#   Haupt-Heads zu messen, ist ein Fehler, den keine Fehlermeldung verrät.
# * **Einfacher Head** (Entwurfsnotiz): eine $(V, d)$-Projektion pro Tiefe auf demselben $h_i$ –
#   $D \cdot V \cdot d$ Parameter, und er muss über das ungesehene $t_{i+1}$ hinweg raten.
# * **DeepSeek-V3-Modul** (§2.2, Gl. 21–25): RMSNorm auf beide Eingaben, Verkettung, $M_k$,
#   ein Block, der *geteilte* Head – keine $V$-großen Gewichte; es liest das wahre $t_{i+k}$ und
#   erhält die kausale Kette.
# * **Verlust:** $\lambda \sum_k$ oder DeepSeeks $\frac{\lambda}{D} \sum_k$
#   (`average_over_depth=True`); für $D = 1$ identisch. Gl. 24 teilt durch $T$, die Bibliothek durch
#   die Zahl der gültigen Ziele.
#
# Notebook 03b trainiert beide Bauweisen auf der Spielzeugsprache und misst, was sie kosten und was
# Tiefe 1 als Draft-Modell taugt.

# %% [markdown] en
# ## Check your understanding
#
# 1. With rows of T = 8 inputs, which slice of the labels does depth 2 use, and how many of its targets per row are valid?
#    <details><summary>Answer</summary>labels[:, 2:], 6 positions, of which the last is the ignored last label: 5 valid targets (T − k − 1).</details>
# 2. With D = 3 and λ = 0.3, what weight does each depth get in DeepSeek-V3's loss (Eq. 25), and in the form with λ per depth?
#    <details><summary>Answer</summary>λ/D = 0.1 each, against 0.3 each: the second form triples the MTP share when D goes from 1 to 3.</details>
# 3. Why does the DeepSeek module add no vocabulary-sized parameters?
#    <details><summary>Answer</summary>It shares the main model's embedding and output head; its own parameters are M_k (d × 2d), one block and three RMSNorm gains per depth.</details>
# 4. Eq. 21 writes the hidden state first; the released weights take the embedding first. Does it matter for training from scratch? For loading DeepSeek's weights?
#    <details><summary>Answer</summary>Not for training from scratch: the orders differ by a permutation of M_k's input columns. For loading it does: the two column halves of eh_proj must be swapped.</details>

# %% [markdown] de
# ## Verständnisfragen
#
# 1. Welchen Ausschnitt der Labels nutzt Tiefe 2 bei Zeilen aus T = 8 Eingaben, und wie viele ihrer Ziele pro Zeile sind gültig?
#    <details><summary>Antwort</summary>labels[:, 2:], 6 Positionen, deren letzte das ignorierte letzte Label ist: 5 gültige Ziele (T − k − 1).</details>
# 2. Welches Gewicht bekommt jede Tiefe bei D = 3 und λ = 0,3 im Verlust von DeepSeek-V3 (Gl. 25), und welches in der Form mit λ pro Tiefe?
#    <details><summary>Antwort</summary>λ/D = 0,1 je Tiefe gegenüber 0,3 je Tiefe: Die zweite Form verdreifacht den MTP-Anteil, wenn D von 1 auf 3 steigt.</details>
# 3. Warum fügt das DeepSeek-Modul keine Parameter in der Größe des Vokabulars hinzu?
#    <details><summary>Antwort</summary>Es teilt Embedding und Ausgabeschicht mit dem Hauptmodell; eigene Parameter sind pro Tiefe M_k (d × 2d), ein Block und drei RMSNorm-Gewichte.</details>
# 4. In Gl. 21 steht der Hidden State zuerst, die veröffentlichten Gewichte nehmen das Embedding zuerst. Spielt das für ein Training von Grund auf eine Rolle? Für das Laden der Gewichte von DeepSeek?
#    <details><summary>Antwort</summary>Für ein Training von Grund auf nicht: Die Reihenfolgen unterscheiden sich durch eine Permutation der Eingangsspalten von M_k. Beim Laden schon: Die beiden Spaltenhälften von eh_proj müssen vertauscht werden.</details>
