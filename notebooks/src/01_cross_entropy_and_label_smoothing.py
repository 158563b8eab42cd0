# %% [markdown] en
# # 01 · Cross-entropy and label smoothing
#
# A language model ends in a vector of **logits** $z \in \mathbb{R}^V$ for every position: one score
# per vocabulary entry. This notebook turns those scores into the number we train on, step by step:
#
# 1. softmax and negative log-likelihood by hand, checked against PyTorch and `aptt_edu`;
# 2. why the targets are the inputs *shifted by one*;
# 3. padding and `ignore_index`;
# 4. label smoothing: the smoothed target, its decomposition, the optimum it drives the model to;
# 5. training with and without smoothing on a toy language, and what smoothing does to calibration;
# 6. perplexity, token accuracy, and an accumulation pitfall.
#
# Every number in the text is printed by a cell or checked by an `assert`.
#
# **Goals.** After this notebook you can compute the next-token loss by hand and stably, shift the
# labels and mask padding, say what label smoothing does to the target and to the lowest reachable
# loss, and compute a data set's perplexity correctly.
# **Prerequisites.** Notebook 00 (entropy and KL, the toy language, $p - \mathrm{onehot}(y)$).
# **Time.** About 35 minutes of reading for the core path (sections 1–4 and 6) and 10 more for the
# deep dive (section 5, the training runs), plus four exercises; under a minute to run.
# **Builds on.** Notebook 00.

# %% [markdown] de
# # 01 · Kreuzentropie und Label Smoothing
#
# Ein Sprachmodell liefert an jeder Position einen Vektor von **Logits** $z \in \mathbb{R}^V$: einen
# Wert pro Eintrag des Vokabulars. Dieses Notebook macht daraus Schritt für Schritt die Zahl, auf die
# wir trainieren:
#
# 1. Softmax und negative Log-Likelihood von Hand, geprüft gegen PyTorch und `aptt_edu`;
# 2. warum die Ziele die um eins *verschobenen* Eingaben sind;
# 3. Padding und `ignore_index`;
# 4. Label Smoothing: das geglättete Ziel, seine Zerlegung und das Optimum, zu dem es das Modell treibt;
# 5. Training mit und ohne Label Smoothing auf einer Spielzeugsprache – und wie sich Label Smoothing auf die Kalibrierung auswirkt;
# 6. Perplexität, Token-Genauigkeit und eine Falle beim Mitteln über Batches.
#
# Jede Zahl im Text wird von einer Zelle ausgegeben oder mit einem `assert` geprüft.
#
# **Lernziele.** Nach diesem Notebook können Sie den Next-Token-Verlust von Hand und numerisch
# stabil berechnen, die Labels verschieben und Padding maskieren, sagen, was Label Smoothing mit dem
# Ziel und mit dem kleinsten erreichbaren Verlust macht, und die Perplexität eines Datensatzes richtig
# berechnen.
# **Voraussetzungen.** Notebook 00 (Entropie und KL, die Spielzeugsprache, $p - \mathrm{onehot}(y)$).
# **Zeit.** Etwa 35 Minuten Lesezeit für den Kernpfad (Abschnitte 1–4 und 6) und 10 weitere für
# die Vertiefung (Abschnitt 5, die Trainingsläufe), dazu vier Aufgaben; unter einer Minute Laufzeit.
# **Grundlage.** Notebook 00.
# **Sprache.** Abbildungen, Code, Code-Kommentare und Zellausgaben sind in beiden Sprachfassungen
# englisch; der Text erklärt, was sie zeigen. Die Läufe heißen dort `ε = 0.0` und `ε = 0.1`.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from aptt_edu import shift_labels
from aptt_edu.exercises import check
from aptt_edu.loss.language_modeling import (
    LanguageModelingLoss,
    PerplexityMetric,
    TokenAccuracyMetric,
    label_smoothed_cross_entropy_textbook,
)

torch.manual_seed(0)
torch.set_num_threads(1)  # one thread: the same float sums on any machine
torch.set_printoptions(precision=4, sci_mode=False)


# %% en tags=["language"]
LANG = "en"  # the language of the exercises' feedback (the German notebook sets "de")

# %% de tags=["language"]
LANG = "de"  # die Sprache der Rückmeldungen zu den Aufgaben (das englische Notebook setzt "en")
# %% [markdown] en
# ## 1. Softmax and negative log-likelihood by hand
#
# The softmax turns logits into a probability distribution, and the loss of one position with target
# $y$ is the negative log-probability of that target:
#
# $$p_v = \frac{e^{z_v}}{\sum_{u=1}^{V} e^{z_u}}, \qquad \ell = -\log p_y = -z_y + \log \sum_{u} e^{z_u}.$$
#
# The right-hand form (log-sum-exp) is how it is computed in practice: subtracting $\max_u z_u$ first
# keeps $e^{z}$ from overflowing. Over $N$ positions the loss is the mean,
# $\mathcal{L} = \frac{1}{N}\sum_i -\log p_{i, y_i}$: the **cross-entropy** between the one-hot target
# and the model's distribution.
# %% [markdown] de
# ## 1. Softmax und negative Log-Likelihood von Hand
#
# Die Softmax macht aus Logits eine Wahrscheinlichkeitsverteilung; der Verlust einer Position mit
# Zieltoken $y$ ist die negative Log-Wahrscheinlichkeit dieses Ziels:
#
# $$p_v = \frac{e^{z_v}}{\sum_{u=1}^{V} e^{z_u}}, \qquad \ell = -\log p_y = -z_y + \log \sum_{u} e^{z_u}.$$
#
# Die rechte Form (Log-Sum-Exp) ist die, mit der man tatsächlich rechnet: Zieht man vorher
# $\max_u z_u$ ab, kann $e^{z}$ nicht überlaufen. Über $N$ Positionen nimmt man den Mittelwert,
# $\mathcal{L} = \frac{1}{N}\sum_i -\log p_{i, y_i}$: die **Kreuzentropie** zwischen dem One-Hot-Ziel
# und der Verteilung des Modells.

# %% [markdown] en
# ### Exercise: cross-entropy by hand
#
# Write `my_cross_entropy(logits, labels, ignore_index=-100)`: logits `(B, T, V)`, labels
# `(B, T)`, the mean of $-\log p_{i, y_i}$ over the positions whose label is not `ignore_index`,
# as a 0-dim tensor. Compute $\log p$ stably (subtract the maximum first, or use `log_softmax`). Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Kreuzentropie von Hand
#
# Schreiben Sie `my_cross_entropy(logits, labels, ignore_index=-100)`: Logits `(B, T, V)`,
# Labels `(B, T)`, der Mittelwert von $-\log p_{i, y_i}$ über die Positionen, deren Label nicht
# `ignore_index` ist, als 0-dimensionaler Tensor. Berechnen Sie $\log p$ numerisch stabil
# (erst das Maximum abziehen oder `log_softmax` verwenden). Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_cross_entropy(logits, labels, ignore_index=-100):
    """(B, T, V) logits, (B, T) labels -> mean NLL over positions whose label != ignore_index."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_cross_entropy(logits, labels, ignore_index=-100):
    valid = labels != ignore_index  # (B, T)
    log_p = logits[valid].log_softmax(dim=-1)  # (N, V): log-sum-exp with the max shift inside
    return -log_p.gather(1, labels[valid][:, None]).mean()  # mean over the N valid positions

# %%
result = check("cross_entropy", my_cross_entropy, lang=LANG)

# %% [markdown] en
# PyTorch's `F.cross_entropy` and the library's `LanguageModelingLoss` compute the same mean, and
# from here on the notebook uses them (your function is graded above, not reused):
# %% [markdown] de
# `F.cross_entropy` aus PyTorch und `LanguageModelingLoss` aus der Bibliothek berechnen denselben
# Mittelwert; ab hier verwendet das Notebook diese beiden (Ihre Funktion wurde oben geprüft, sie wird
# nicht weiterverwendet):

# %%
B, T, V = 2, 5, 7  # batch, sequence length, vocabulary size
logits = torch.randn(B, T, V)  # (B, T, V)
labels = torch.randint(0, V, (B, T))  # (B, T)
pytorch = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1))
library = LanguageModelingLoss(vocab_size=V)(logits, labels)
print(f"F.cross_entropy {pytorch.item():.6f} | aptt_edu {library.item():.6f}")
assert torch.allclose(library, pytorch, atol=1e-6)

# %% [markdown] en
# A useful anchor: a model that knows nothing predicts the uniform distribution, $p_v = 1/V$, and
# its loss is $\log V$. Any trained model must beat that.
# %% [markdown] de
# Ein nützlicher Bezugspunkt: Ein Modell, das nichts weiß, sagt die Gleichverteilung $p_v = 1/V$ voraus;
# sein Verlust ist $\log V$. Jedes trainierte Modell muss diesen Wert unterbieten.

# %%
uniform_loss = LanguageModelingLoss(V)(torch.zeros(B, T, V), labels)
print(f"uniform prediction: loss = {uniform_loss.item():.4f}, log V = {math.log(V):.4f}")
assert abs(uniform_loss.item() - math.log(V)) < 1e-6

# %% [markdown] en
# ## 2. Why the targets are shifted
#
# A causal model reads tokens $t_1 \dots t_i$ and must predict $t_{i+1}$. So the target at position
# $i$ is the *next* input token: `labels[b, t] = input_ids[b, t + 1]`. The last position has no
# successor and gets the marker `ignore_index = -100`. `shift_labels` does exactly this; the whole
# library expects labels in this already-shifted form.
# %% [markdown] de
# ## 2. Warum die Ziele verschoben sind
#
# Ein kausales Modell liest die Tokens $t_1 \dots t_i$ und soll $t_{i+1}$ vorhersagen. Das Ziel an
# Position $i$ ist also das *nächste* Eingabetoken: `labels[b, t] = input_ids[b, t + 1]`. Die letzte
# Position hat keinen Nachfolger und bekommt die Markierung `ignore_index = -100`. Genau das macht
# `shift_labels`; die ganze Bibliothek erwartet Labels in dieser bereits verschobenen Form.

# %%
text = "the cat sat"
vocab = sorted(set(text))
ids = torch.tensor([[vocab.index(c) for c in text]])  # (1, 11) character ids
inputs, shifted = shift_labels(ids)
print("position :", " ".join(f"{i:>3}" for i in range(len(text))))
print("input    :", " ".join(f"{c!r:>3}" for c in text))
print("target   :", " ".join(f"{vocab[int(y)]!r:>3}" if y >= 0 else "  -" for y in shifted[0]))
assert torch.equal(shifted[0, :-1], ids[0, 1:]) and shifted[0, -1] == -100

# %% [markdown] en
# ### Exercise: shift the labels
#
# Write `my_shift_labels(input_ids, ignore_index=-100)`: from ids `(B, T)` the labels `(B, T)`
# with `labels[:, t] = input_ids[:, t + 1]` and `ignore_index` at the last position (only the
# labels, not the pair that `shift_labels` returns). Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Labels verschieben
#
# Schreiben Sie `my_shift_labels(input_ids, ignore_index=-100)`: aus IDs `(B, T)` die Labels
# `(B, T)` mit `labels[:, t] = input_ids[:, t + 1]` und `ignore_index` an der letzten Position (nur
# die Labels, nicht das Paar, das `shift_labels` zurückgibt). Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_shift_labels(input_ids, ignore_index=-100):
    """(B, T) ids -> (B, T) labels: labels[:, t] = input_ids[:, t + 1], the last one ignored."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_shift_labels(input_ids, ignore_index=-100):
    labels = torch.full_like(input_ids, ignore_index)  # (B, T), all "no target"
    labels[:, :-1] = input_ids[:, 1:]  # position t is scored on token t + 1
    return labels

# %%
result = check("shift_labels", my_shift_labels, lang=LANG)

# %% [markdown] en
# ## 3. Padding and `ignore_index`
#
# Sequences in a batch have different lengths, so short ones are padded. Padded positions must not
# count: their label is `ignore_index`, they are left out of the sum *and* out of the count $N$.
# Whatever the model predicts there cannot change the loss:
# %% [markdown] de
# ## 3. Padding und `ignore_index`
#
# Sequenzen in einem Batch sind unterschiedlich lang, also werden kurze aufgefüllt (Padding).
# Aufgefüllte Positionen dürfen nicht zählen: Ihr Label ist `ignore_index`, sie fehlen in der Summe
# *und* in der Anzahl $N$. Was das Modell dort vorhersagt, kann den Verlust nicht ändern:

# %%
padded = labels.clone()
padded[1, 3:] = -100  # the second sequence ends after 3 targets
loss_fn = LanguageModelingLoss(V)
before = loss_fn(logits, padded)
scrambled = logits.clone()
scrambled[1, 3:] = 100 * torch.randn(2, V)  # garbage at the padded positions
after = loss_fn(scrambled, padded)
print(f"loss {before.item():.6f} -> {after.item():.6f} after changing logits at padded positions")
assert torch.equal(before, after)

# %% [markdown] en
# One deliberate difference from `F.cross_entropy`: a batch in which *every* position is padding has
# no defined mean (0/0). PyTorch returns `nan` as the loss *value*; its gradient is zero, so no
# parameter turns NaN. The NaN lands in everything computed from the value instead: the logged loss
# and its running mean, a learning-rate scheduler or early stopping that watches the loss, an
# `isfinite` guard that skips the step or stops the run. `LanguageModelingLoss` returns 0.0 with
# zero gradients. Zero gradients do not make the step a no-op, though: AdamW still moves every
# weight through its momentum and its decoupled weight decay, unless the step is skipped.
# %% [markdown] de
# Ein bewusster Unterschied zu `F.cross_entropy`: Ein Batch, in dem *jede* Position Padding ist, hat
# keinen definierten Mittelwert (0/0). PyTorch liefert `nan` als *Wert* des Verlusts; sein Gradient
# ist null, kein Parameter wird also NaN. Das NaN landet stattdessen in allem, was aus dem Wert
# berechnet wird: im protokollierten Verlust und seinem gleitenden Mittel, in einem
# Lernraten-Scheduler oder Early Stopping, die den Verlust beobachten, in einer
# `isfinite`-Prüfung, die den Schritt überspringt oder den Lauf abbricht. `LanguageModelingLoss`
# liefert 0,0 mit einem Gradienten von null. Ein Gradient von null macht den Schritt aber nicht wirkungslos: AdamW
# bewegt jedes Gewicht weiter, über sein Momentum und seinen entkoppelten Weight Decay – es sei
# denn, man überspringt den Schritt.

# %%
all_pad = torch.full((B, T), -100)
z = logits.clone().requires_grad_()
ours = loss_fn(z, all_pad)
ours.backward()
z_torch = logits.clone().requires_grad_()
theirs = F.cross_entropy(z_torch.reshape(-1, V), all_pad.reshape(-1))
theirs.backward()
print(f"F.cross_entropy: value {theirs.item()}, max |grad| = {z_torch.grad.abs().max().item()}")
print(f"aptt_edu:        value {ours.item()}, max |grad| = {z.grad.abs().max().item()}")
assert math.isnan(theirs.item()) and z_torch.grad.abs().max() == 0  # NaN value, zero gradient
assert ours.item() == 0.0 and z.grad.abs().max() == 0

# a zero gradient still moves weights: one AdamW step (its default weight decay, 0.01)
w = torch.nn.Parameter(torch.ones(3))
w.grad = torch.zeros(3)
torch.optim.AdamW([w], lr=0.1).step()
print(f"after one AdamW step on a zero gradient: {w.data.tolist()}")  # 1 - lr * 0.01 = 0.999
assert (w.data < 1).all()

# %% [markdown] en
# ## 4. Label smoothing
#
# Label smoothing (Szegedy et al., 2016, §7) replaces the one-hot target by a mixture with the
# uniform distribution. With smoothing strength $\varepsilon$:
#
# $$q_v = (1-\varepsilon)\,[v = y] + \frac{\varepsilon}{V}.$$
#
# The loss is the cross-entropy to $q$, and because $q$ is a mixture, the cross-entropy splits into
# two familiar terms:
#
# $$H(q, p) = -\sum_v q_v \log p_v = (1-\varepsilon)\,\underbrace{(-\log p_y)}_{\text{CE}}
#   + \varepsilon\,\underbrace{\frac{1}{V}\sum_v (-\log p_v)}_{\text{CE(uniform},\,p)}.$$
#
# The first term pulls $p_y$ up; the second penalises *any* token getting a very small
# probability. We check all three forms: the textbook one that builds $q$, the decomposition, and
# the library.
# %% [markdown] de
# ## 4. Label Smoothing
#
# Label Smoothing (Szegedy et al., 2016, §7) ersetzt das One-Hot-Ziel durch eine Mischung mit der
# Gleichverteilung. Mit der Glättungsstärke $\varepsilon$ gilt:
#
# $$q_v = (1-\varepsilon)\,[v = y] + \frac{\varepsilon}{V}.$$
#
# Der Verlust ist die Kreuzentropie zu $q$, und weil $q$ eine Mischung ist, zerfällt sie in zwei
# bekannte Terme:
#
# $$H(q, p) = -\sum_v q_v \log p_v = (1-\varepsilon)\,\underbrace{(-\log p_y)}_{\text{CE}}
#   + \varepsilon\,\underbrace{\frac{1}{V}\sum_v (-\log p_v)}_{\text{CE(uniform},\,p)}.$$
#
# Der erste Term zieht $p_y$ nach oben; der zweite bestraft es, wenn *irgendein* Token eine sehr
# kleine Wahrscheinlichkeit bekommt. Wir prüfen alle drei Formen: die Lehrbuchform, die $q$ explizit
# baut, die Zerlegung und die Bibliothek.

# %%
eps = 0.1
log_p = logits.log_softmax(dim=-1)  # (B, T, V)
ce = -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # (B, T)
ce_uniform = -log_p.mean(dim=-1)  # (B, T)
decomposed = ((1 - eps) * ce + eps * ce_uniform).mean()
textbook = label_smoothed_cross_entropy_textbook(logits, labels, label_smoothing=eps)
library = LanguageModelingLoss(V, label_smoothing=eps)(logits, labels)
print(f"decomposition {decomposed.item():.6f} | textbook {textbook.item():.6f} | aptt_edu {library.item():.6f}")
assert torch.allclose(decomposed, library, atol=1e-6) and torch.allclose(textbook, library, atol=1e-6)

# %% [markdown] en
# ### The optimum label smoothing drives the model to
#
# $H(q, p) = H(q) + \mathrm{KL}(q \,\|\, p)$ and the KL divergence is zero only for $p = q$. So the
# best a model can do on a position it is *sure* about is to predict $q$ itself: probability
# $1 - \varepsilon + \varepsilon/V$ on the target and $\varepsilon/V$ on every other token. The
# lowest reachable loss is therefore not 0 but the entropy of $q$,
#
# $$\mathcal{L}^*_\varepsilon = H(q) = -\Big(1-\varepsilon+\tfrac{\varepsilon}{V}\Big)\log\Big(1-\varepsilon+\tfrac{\varepsilon}{V}\Big)
#   - (V-1)\,\tfrac{\varepsilon}{V}\log\tfrac{\varepsilon}{V},$$
#
# reached with a finite logit margin $m^* = z_y - z_{v \neq y} = \log\frac{1-\varepsilon+\varepsilon/V}{\varepsilon/V}$.
# Without smoothing the optimum is $m \to \infty$: the logits grow without bound. We check the closed
# form by minimising the loss numerically over a free logit vector.
# %% [markdown] de
# ### Das Optimum, zu dem Label Smoothing das Modell treibt
#
# Es gilt $H(q, p) = H(q) + \mathrm{KL}(q \,\|\, p)$, und die KL-Divergenz ist nur für $p = q$ null.
# Das Beste, was ein Modell an einer Position tun kann, an der es sich *sicher* ist, ist also, $q$
# selbst vorherzusagen: Wahrscheinlichkeit $1 - \varepsilon + \varepsilon/V$ auf dem Ziel und
# $\varepsilon/V$ auf jedem anderen Token. Der kleinste erreichbare Verlust ist daher nicht 0,
# sondern die Entropie von $q$,
#
# $$\mathcal{L}^*_\varepsilon = H(q) = -\Big(1-\varepsilon+\tfrac{\varepsilon}{V}\Big)\log\Big(1-\varepsilon+\tfrac{\varepsilon}{V}\Big)
#   - (V-1)\,\tfrac{\varepsilon}{V}\log\tfrac{\varepsilon}{V},$$
#
# erreicht bei einem endlichen Logit-Abstand $m^* = z_y - z_{v \neq y} = \log\frac{1-\varepsilon+\varepsilon/V}{\varepsilon/V}$.
# Ohne Label Smoothing liegt das Optimum bei $m \to \infty$: Die Logits wachsen unbegrenzt. Wir
# prüfen die geschlossene Form, indem wir den Verlust numerisch über einen freien Logit-Vektor
# minimieren.


# %%
def best_smoothed_loss(eps: float, V: int) -> tuple[float, float]:
    """Closed form: (lowest loss H(q), optimal logit margin m*)."""
    q_hit, q_miss = 1 - eps + eps / V, eps / V
    return -q_hit * math.log(q_hit) - (V - 1) * q_miss * math.log(q_miss), math.log(q_hit / q_miss)


eps, target = 0.1, torch.tensor([[2]])
z = torch.zeros(1, 1, V, requires_grad=True)
opt = torch.optim.LBFGS([z], max_iter=200, line_search_fn="strong_wolfe")
smoothed = LanguageModelingLoss(V, label_smoothing=eps)


def closure() -> torch.Tensor:
    opt.zero_grad()
    loss = smoothed(z, target)
    loss.backward()
    return loss


opt.step(closure)
numeric_loss = smoothed(z, target).item()
numeric_margin = (z[0, 0, 2] - z[0, 0, 0]).item()
closed_loss, closed_margin = best_smoothed_loss(eps, V)
print(f"lowest loss: numeric {numeric_loss:.5f}, closed form {closed_loss:.5f}")
print(f"best margin: numeric {numeric_margin:.2f}, closed form {closed_margin:.2f}")
# The loss is flat at its minimum: in float32 a margin 1e-3 off changes it by ~1e-7, below the
# rounding of the sum, so the optimiser pins the margin to ~1e-3 (and different CPU kernels land at
# different points of that flat bottom). Hence two decimals and a tolerance of 1e-2 for the margin.
assert abs(numeric_loss - closed_loss) < 1e-5 and abs(numeric_margin - closed_margin) < 1e-2

# %% [markdown] en
# The same picture as a plot: one position, target logit $m$, all other logits 0. Without smoothing
# the loss keeps falling as the margin grows; with smoothing each curve has a minimum at $m^*$ (dots)
# and *rises* again — the model is punished for being overconfident.
# %% [markdown] de
# Dasselbe als Diagramm: eine Position, Ziel-Logit $m$, alle anderen Logits 0. Ohne Label Smoothing fällt
# der Verlust immer weiter, je größer der Abstand wird; mit Label Smoothing hat jede Kurve bei $m^*$
# ein Minimum (Punkte) und *steigt* danach wieder – Überkonfidenz wird bestraft.

# %%
margins = torch.linspace(-2, 12, 281)
fig, ax = plt.subplots(figsize=(7, 4))
for eps in (0.0, 0.05, 0.1, 0.2):
    z = torch.zeros(len(margins), 1, V)
    z[:, 0, 2] = margins  # target logit = margin, others 0
    per_margin = LanguageModelingLoss(V, label_smoothing=eps, reduction="none")(
        z, torch.full((len(margins), 1), 2)
    )
    (line,) = ax.plot(margins, per_margin[:, 0], label=f"ε = {eps}")
    if eps > 0:
        best_loss, best_m = best_smoothed_loss(eps, V)
        ax.plot([best_m], [best_loss], "o", color=line.get_color())
ax.set(xlabel="logit margin m = z_y − z_other", ylabel="loss", title=f"Loss vs margin (V = {V})")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown] en
# *Figure:* the loss of one position against its logit margin $m$, for $\varepsilon = 0$, 0.05, 0.1
# and 0.2. The curve without smoothing falls towards 0 as $m$ grows; every smoothed curve has its
# minimum at $m^*$ (the dot) and rises beyond it.
# %% [markdown] de
# *Abbildung:* der Verlust einer Position in Abhängigkeit von ihrem Logit-Abstand $m$
# (`logit margin`), für $\varepsilon = 0$; 0,05; 0,1 und 0,2. Die Kurve ohne Label Smoothing fällt
# mit wachsendem $m$ gegen null; jede geglättete Kurve hat ihr Minimum bei $m^*$ (als Punkt
# markiert) und steigt danach wieder an.

# %% [markdown] en
# **Try it.** How do $m^*$ and the floor $H(q)$ move with $\varepsilon$ and with the vocabulary size
# $V$? In a live notebook (Jupyter, Colab) the sliders below redraw the figure; on the docs site and under
# the notebook tests it is drawn once, with the defaults (`aptt_edu.widgets.explore`).
# %% [markdown] de
# **Probieren Sie es aus.** Wie verschieben sich $m^*$ und die Untergrenze $H(q)$ mit
# $\varepsilon$ und mit der Vokabulargröße $V$? In einem laufenden Notebook (Jupyter, Colab) zeichnen die Schieberegler unten die Abbildung neu;
# auf der Website und in den Notebook-Tests wird sie einmal mit den Voreinstellungen gezeichnet
# (`aptt_edu.widgets.explore`).

# %%
from aptt_edu.widgets import explore


def draw_margin(eps: float, V: int) -> None:
    m = torch.linspace(-2, 16, 361)
    z = torch.zeros(len(m), 1, V)
    z[:, 0, 0] = m  # target logit = margin, the other V - 1 logits 0
    y = torch.zeros(len(m), 1, dtype=torch.long)
    _, ax = plt.subplots(figsize=(7, 4))
    for e, style in ((0.0, ":"), (eps, "-")):
        loss = LanguageModelingLoss(V, label_smoothing=e, reduction="none")(z, y)[:, 0]
        ax.plot(m, loss, style, label=f"ε = {e:g}")
    if eps > 0:
        floor, m_star = best_smoothed_loss(eps, V)
        ax.plot([m_star], [floor], "o", color="C1")
        ax.axhline(floor, color="C1", lw=0.8, ls="--")
        ax.set_title(f"V = {V}, ε = {eps:g}: m* = {m_star:.2f}, floor H(q) = {floor:.3f}")
    ax.set(xlabel="logit margin m = z_y − z_other", ylabel="loss")
    ax.legend()
    ax.grid(alpha=0.3)
    plt.show()


explore(draw_margin, eps=(0.0, 0.5, 0.01, 0.1), V=(2, 256, 1, 16))

# %% [markdown] en
# *Figure:* the loss against the margin for the $\varepsilon$ and $V$ of the sliders (drawn with
# $\varepsilon = 0.1$ and $V = 16$ where nothing runs live), dotted without smoothing. The dashed
# line is the floor $H(q)$, the lowest loss the smoothed target allows, reached at $m^*$ (the dot);
# the title gives both.
# %% [markdown] de
# *Abbildung:* der Verlust über dem Logit-Abstand für die mit den Schiebereglern eingestellten Werte
# von $\varepsilon$ und $V$ (auf der Website und in den Notebook-Tests mit den Voreinstellungen
# $\varepsilon = 0{,}1$ und $V = 16$ gezeichnet), gepunktet ohne Label Smoothing. Die gestrichelte
# Linie ist die Untergrenze $H(q)$, der kleinste Verlust, den das geglättete Ziel zulässt, erreicht
# bei $m^*$ (als Punkt markiert); der Titel nennt beide Werte.

# %% [markdown] en
# ### Exercise: label smoothing
#
# Write `my_label_smoothing(logits, labels, epsilon, ignore_index=-100)`: the label-smoothed
# cross-entropy of section 4, the mean over valid positions of
# $(1-\varepsilon)\,(-\log p_y) + \varepsilon \cdot \frac{1}{V}\sum_v (-\log p_v)$ — what
# `F.cross_entropy(..., label_smoothing=epsilon)` computes. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Label Smoothing
#
# Schreiben Sie `my_label_smoothing(logits, labels, epsilon, ignore_index=-100)`: die geglättete
# Kreuzentropie aus Abschnitt 4, den Mittelwert über die gültigen Positionen von
# $(1-\varepsilon)\,(-\log p_y) + \varepsilon \cdot \frac{1}{V}\sum_v (-\log p_v)$ – das, was
# `F.cross_entropy(..., label_smoothing=epsilon)` berechnet. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_label_smoothing(logits, labels, epsilon, ignore_index=-100):
    """(B, T, V), (B, T), eps -> mean over valid positions of the label-smoothed NLL."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_label_smoothing(logits, labels, epsilon, ignore_index=-100):
    valid = labels != ignore_index
    log_p = logits[valid].log_softmax(dim=-1)  # (N, V)
    nll = -log_p.gather(1, labels[valid][:, None]).squeeze(1)  # (N,): -log p_y
    uniform = -log_p.mean(dim=-1)  # (N,): cross-entropy against the uniform target, (1/V) sum_v
    return ((1 - epsilon) * nll + epsilon * uniform).mean()

# %%
result = check("label_smoothing", my_label_smoothing, lang=LANG)

# %% [markdown] en
# ## 5. Training with and without label smoothing
#
# Now a real model: a tiny Transformer (`aptt_edu.model.GPT`) trained on a *toy language* — an
# order-2 Markov chain over 16 letters whose **entropy rate** $H$ the package computes exactly
# (`aptt_edu.data`, introduced in notebook 00). $H$ is the lowest cross-entropy any model can reach on this source: the dashed
# line. Both runs share seed, data and everything else; only the training loss differs. The
# validation loss is always the *plain* cross-entropy, so the two runs are comparable.
# %% [markdown] de
# ## 5. Training mit und ohne Label Smoothing
#
# Jetzt ein echtes Modell: ein winziger Transformer (`aptt_edu.model.GPT`), trainiert auf einer
# *Spielzeugsprache* – einer Markow-Kette 2. Ordnung über 16 Buchstaben, deren **Entropierate** $H$ das
# Paket exakt berechnet (`aptt_edu.data`, eingeführt in Notebook 00). $H$ ist die kleinste Kreuzentropie, die irgendein Modell
# auf dieser Quelle erreichen kann: die gestrichelte Linie. Beide Läufe haben Seed, Daten und alles
# andere; nur der Trainingsverlust unterscheidet sich. Der Validierungsverlust ist immer die
# *einfache* Kreuzentropie, damit beide Läufe vergleichbar sind.

# %% tags=["nbval-ignore-output"]
from aptt_edu.data import ToyLanguage, make_inputs_and_labels
from aptt_edu.plotting import plot_loss_curves
from aptt_edu.training import TrainConfig, train

runs = {f"ε = {e}": train(TrainConfig(label_smoothing=e, seed=0, progress=False)) for e in (0.0, 0.1)}
H = runs["ε = 0.0"].entropy_rate

# The smoothed run's own floor: per context, smoothed CE is minimised by p* = (1-ε) P + ε/V
# (section 4, now with the source's distribution P instead of one target), and the plain CE of p*
# on the source is  H_ε = Σ_c π(c) Σ_x P(x|c) · (−log p*(x|c))  >  H  (Gibbs: p* ≠ P).
lang = ToyLanguage(TrainConfig().toy_vocab_size, seed=0)  # the language these runs trained on
assert lang.entropy_rate == H
eps, V_toy = 0.1, lang.vocab_size
p_star = (1 - eps) * lang.transition + eps / V_toy  # (V, V, V): p*(x | a, b)
H_eps = float((lang.stationary_dist[..., None] * lang.transition * -p_star.log()).sum())
assert H_eps > H  # exact: the best smoothed model cannot reach H in plain cross-entropy

for name, h in runs.items():
    print(f"{name}: final validation loss {h.val_loss[-1]:.4f} nats, gap to H = {h.val_loss[-1] - H:.4f}")
print(f"entropy rate H = {H:.4f} nats/token; floor of the best ε = 0.1 model H_ε = {H_eps:.4f}")
gap = runs["ε = 0.1"].val_loss[-1] - H
print(f"share of the ε = 0.1 run's gap to H that is the price of the smoothed target: "
      f"{(H_eps - H) / gap:.0%}")
ax = plot_loss_curves(runs, floor=H, ylim=(H - 0.1, math.log(V_toy) + 0.1))  # from log V down
ax.axhline(H_eps, color="C1", linestyle=":", linewidth=1.2)
ax.annotate(rf"floor of ε = 0.1: $H_\varepsilon$ = {H_eps:.3f}", xy=(0.0, H_eps),
            xycoords=("axes fraction", "data"), xytext=(6, 4), textcoords="offset points",
            ha="left", va="bottom", color="C1")  # left end, above the line: the curves are high there
ax.set_title("Validation loss (thick) and training loss (faint)")
plt.show()

# %% [markdown] en
# *Figure:* validation loss (thick) and training loss (faint) of the runs with $\varepsilon = 0$ and
# $\varepsilon = 0.1$, from $\log V$ down, with the entropy rate $H$ dashed and the smoothed run's
# own floor $H_\varepsilon$ dotted.
# %% [markdown] de
# *Abbildung:* Validierungsverlust (kräftig) und Trainingsverlust (blass) der Läufe mit
# $\varepsilon = 0$ und $\varepsilon = 0{,}1$, von $\log V$ abwärts; gestrichelt die Entropierate
# $H$, gepunktet die eigene Untergrenze $H_\varepsilon$ des geglätteten Laufs.

# %% [markdown] en
# The faint training curve of the smoothed run sits higher: it includes the smoothing term, which
# cannot go to zero (section 4). What matters is the validation loss, and for the smoothed run it
# has a floor of its own. The best model under the smoothed loss predicts
# $p^* = (1-\varepsilon)\,P + \varepsilon / V$ rather than the source's $P$ (section 4's optimum,
# averaged over the source's next tokens), so even that ideal model pays
# $H_\varepsilon = \sum_c \pi(c) \sum_x P(x \mid c)\,\bigl(-\log p^*(x \mid c)\bigr) > H$ in
# plain cross-entropy: the dotted line. Most of the smoothed run's gap to $H$ (the share printed
# above) is this price of its target, not worse learning.
#
# ### Calibration: does a predicted 80 % come true 80 % of the time?
#
# A model is **calibrated** when, among all predictions made with confidence $c$, a fraction $c$ is
# correct. The reliability diagram bins the validation positions by the model's top probability and
# plots the accuracy in each bin against the mean confidence; the diagonal is perfect calibration.
# The **expected calibration error** (ECE) is the token-weighted mean distance to the diagonal.
# Label smoothing is known to change calibration (Müller et al., 2019: it improves it for image
# classifiers and for a Transformer translation model); on our toy source the true next-token distribution is itself uncertain, so the best
# model is the one that predicts it exactly — let us look at what smoothing does here.
# %% [markdown] de
# Die blasse Trainingskurve des geglätteten Laufs liegt höher: Sie enthält den Glättungsterm, der
# nicht gegen null gehen kann (Abschnitt 4). Entscheidend ist der Validierungsverlust, und für den
# geglätteten Lauf hat er eine eigene Untergrenze. Das für den geglätteten Verlust beste Modell
# sagt statt der Verteilung $P$ der Quelle $p^* = (1-\varepsilon)\,P + \varepsilon / V$ vorher (das
# Optimum aus Abschnitt 4, gemittelt über die nächsten Tokens der Quelle); selbst dieses ideale
# Modell zahlt deshalb in einfacher Kreuzentropie
# $H_\varepsilon = \sum_c \pi(c) \sum_x P(x \mid c)\,\bigl(-\log p^*(x \mid c)\bigr) > H$: die
# gepunktete Linie. Der größte Teil des Abstands des geglätteten Laufs zu $H$ (der oben ausgegebene
# Anteil) ist dieser Preis für sein geglättetes Ziel, nicht schlechteres Lernen.
#
# ### Kalibrierung: Trifft eine Vorhersage mit 80 % Konfidenz auch in 80 % der Fälle zu?
#
# Ein Modell ist **kalibriert**, wenn von allen Vorhersagen mit Konfidenz $c$ ein Anteil $c$ stimmt.
# Das Kalibrierungsdiagramm (Reliability Diagram) sortiert die Validierungspositionen nach der höchsten Wahrscheinlichkeit
# des Modells in Klassen und trägt die Genauigkeit jeder Klasse gegen die mittlere Konfidenz auf;
# die Diagonale entspricht perfekter Kalibrierung. Der **erwartete Kalibrierungsfehler** (Expected Calibration Error, ECE) ist der mit der
# Tokenzahl gewichtete mittlere Abstand zur Diagonale. Label Smoothing verändert bekanntlich die
# Kalibrierung (Müller et al., 2019: bei Bildklassifikatoren und einem Transformer für maschinelle
# Übersetzung verbessert es sie); auf unserer
# Spielzeugsprache ist schon die wahre Verteilung des nächsten Tokens breit gestreut; das beste Modell
# ist also dasjenige, das sie genau trifft – sehen wir nach, was Label Smoothing hier bewirkt.

# %% tags=["nbval-ignore-output"]
def reliability(h, n_bins: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Per-bin mean confidence, accuracy and token count on the validation set, and the ECE."""
    inputs, labels = make_inputs_and_labels(h.dataset.val, h.dataset.context_warmup)
    h.model.eval()
    with torch.no_grad():
        probs = h.model(inputs)[0].softmax(dim=-1)  # (N, T, V)
    valid = labels != -100
    conf, pred = probs.max(dim=-1)  # (N, T) top probability and its token
    conf, correct = conf[valid], (pred == labels)[valid].float()
    bins = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    count = torch.bincount(bins, minlength=n_bins).float()
    mean_conf = torch.bincount(bins, conf, minlength=n_bins) / count.clamp(min=1)
    acc = torch.bincount(bins, correct, minlength=n_bins) / count.clamp(min=1)
    ece = ((mean_conf - acc).abs() * count).sum().item() / count.sum().item()
    return mean_conf, acc, count, ece


fig, ax = plt.subplots(figsize=(5, 5))
ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
mean_top = {}
for i, (name, h) in enumerate(runs.items()):
    mean_conf, acc, count, ece = reliability(h)
    used = count >= 50  # bins with a handful of tokens are noise, not calibration
    ax.plot(mean_conf[used], acc[used], "o-", color=f"C{i}", label=f"{name}: ECE = {ece:.3f}")
    mean_top[name] = (mean_conf * count).sum().item() / count.sum().item()
    print(f"{name}: ECE {ece:.4f}, mean top-1 confidence {mean_top[name]:.4f}")
ax.set(xlabel="confidence (top-1 probability)", ylabel="accuracy", title="Reliability diagram")
ax.legend()
plt.show()
assert mean_top["ε = 0.1"] < mean_top["ε = 0.0"]  # smoothing lowers the model's confidence
ece = {name: reliability(h)[3] for name, h in runs.items()}
# ... whether that makes calibration better or worse is a finding of this one run, not a law:
verdict = "worse" if ece["ε = 0.1"] > ece["ε = 0.0"] else "better"
print(f"this run: label smoothing made calibration {verdict} (ECE {ece['ε = 0.0']:.3f} -> {ece['ε = 0.1']:.3f})")

# %% [markdown] en
# *Figure:* the reliability diagram of both runs on the validation set: for each bin of top-1
# confidence with at least 50 tokens, the accuracy against the mean confidence. Points on the dashed
# diagonal are perfectly calibrated, points above it underconfident; the legend gives each run's
# expected calibration error (ECE).
# %% [markdown] de
# *Abbildung:* das Kalibrierungsdiagramm (`Reliability diagram`) beider Läufe auf den
# Validierungsdaten: für jede Konfidenzklasse (nach der höchsten Wahrscheinlichkeit) mit mindestens
# 50 Tokens die Genauigkeit (`accuracy`) gegen die mittlere Konfidenz (`confidence`). Punkte auf der
# gestrichelten Diagonale sind perfekt kalibriert, Punkte darüber unterkonfident; die Legende nennt
# den erwarteten Kalibrierungsfehler (ECE) jedes Laufs.

# %% [markdown] en
# Read the diagram against the popular claim. Smoothing did lower the confidence, but the smoothed
# model's points lie *above* the diagonal: it is now **underconfident** — right more often than it
# says — and its calibration error is larger than the plain model's. That does not contradict Müller
# et al.: label smoothing helps calibration when a model is *over*confident, as their image
# classifiers and translation model, trained with one-hot targets on natural data, were. A model
# that has reached the cross-entropy optimum on a source that is itself uncertain is already close
# to calibrated, because the cross-entropy is minimised by the true distribution; there, pulling it
# towards uniform can only make it underconfident. (A finite or overfitted model can still be
# overconfident; this toy model is neither.)
# %% [markdown] de
# Halten wir das Diagramm gegen die verbreitete Behauptung. Label Smoothing hat die Konfidenz zwar
# gesenkt, aber die Punkte des geglätteten Modells liegen *über* der Diagonale: Es ist jetzt
# **unterkonfident** – es liegt öfter richtig, als es angibt –, und sein Kalibrierungsfehler ist
# größer als der des einfachen Modells. Das widerspricht Müller et al. nicht: Label Smoothing hilft
# der Kalibrierung, wenn ein Modell *über*konfident ist, wie es ihre Bildklassifikatoren und ihr
# Übersetzungsmodell waren, die mit One-Hot-Zielen auf natürlichen Daten trainiert wurden. Ein Modell,
# das auf einer Quelle, die selbst zufällig ist, das Optimum der Kreuzentropie erreicht hat, ist schon nahezu
# kalibriert, denn die Kreuzentropie wird von der wahren Verteilung minimiert; dort kann es der Zug in
# Richtung Gleichverteilung nur unterkonfident machen. (Ein endliches oder überangepasstes Modell
# kann trotzdem überkonfident sein; dieses Spielzeugmodell ist keins von beiden.)

# %% [markdown] en
# ## 6. Perplexity, token accuracy, and an accumulation pitfall
#
# **Perplexity** is the exponential of the mean negative log-likelihood,
# $\mathrm{PPL} = \exp\big(\frac{1}{N}\sum_i -\log p_{i,y_i}\big)$: the number of equally likely tokens
# the model is, on average, choosing between (uniform over $V$ gives exactly $V$). **Token accuracy**
# is the fraction of positions whose target is the top-scoring token.
#
# Over a data set, perplexity must be computed from *sums*: $\exp(\sum \text{NLL} / \sum N)$. Averaging
# per-batch perplexities is a common mistake: it gives a short batch as much weight as a long one,
# and because $\exp$ is convex, the mean of exponentials is never smaller than the exponential of the
# *unweighted* mean (Jensen's inequality). Against the token-weighted data-set perplexity the naive
# mean can come out too high or too low. Two batches of very different length show how large the
# error can get (here too high; a long bad batch beside a short good one gives a mean too low):
# %% [markdown] de
# ## 6. Perplexität, Token-Genauigkeit und eine Falle beim Mitteln
#
# Die **Perplexität** ist die Exponentialfunktion, angewandt auf die mittlere negative Log-Likelihood,
# $\mathrm{PPL} = \exp\big(\frac{1}{N}\sum_i -\log p_{i,y_i}\big)$: die Zahl gleich wahrscheinlicher
# Tokens, zwischen denen das Modell im Mittel wählt (Gleichverteilung über $V$ ergibt genau $V$).
# Die **Token-Genauigkeit** ist der Anteil der Positionen, deren Ziel das Token mit dem höchsten Logit
# ist.
#
# Über einen ganzen Datensatz muss man die Perplexität aus *Summen* berechnen:
# $\exp(\sum \text{NLL} / \sum N)$. Die Perplexitäten einzelner Batches zu mitteln ist ein verbreiteter Fehler:
# Ein kurzer Batch zählt dann so viel wie ein langer, und weil $\exp$ konvex ist, ist der Mittelwert
# der exp-Werte nie kleiner als exp des *ungewichteten* Mittelwerts
# (jensensche Ungleichung). Gegenüber der nach Tokens gewichteten Perplexität des Datensatzes kann
# der naive Mittelwert zu hoch oder zu niedrig ausfallen. Zwei sehr unterschiedlich lange Batches
# zeigen, wie groß der Fehler werden kann (hier zu hoch; ein langer schlechter Batch neben einem
# kurzen guten ergibt einen zu niedrigen Mittelwert):

# %%
torch.manual_seed(1)
V = 50
# batch A: 4 sequences x 64 tokens, a fairly good model (the target gets a logit bonus of 4)
labels_a = torch.randint(0, V, (4, 64))
logits_a = torch.randn(4, 64, V) + 4.0 * F.one_hot(labels_a, V)
# batch B: 1 sequence with 3 real tokens, the rest padding, a poor model (no bonus)
labels_b = torch.full((1, 64), -100)
labels_b[0, :3] = torch.randint(0, V, (3,))
logits_b = torch.randn(1, 64, V)

ppl, acc = PerplexityMetric(), TokenAccuracyMetric()
per_batch = [ppl(logits_a, labels_a).item(), ppl(logits_b, labels_b).item()]  # also accumulates
acc.update(logits_a, labels_a)
acc.update(logits_b, labels_b)
data_set = ppl.compute().item()

# the same number from raw sums, by hand
nll = torch.cat(
    [
        F.cross_entropy(logits_a.reshape(-1, V), labels_a.reshape(-1), reduction="none"),
        F.cross_entropy(logits_b.reshape(-1, V), labels_b.reshape(-1), reduction="none")[:3],
    ]
)
print(f"per-batch perplexities: {per_batch[0]:.2f} and {per_batch[1]:.2f}")
print(f"mean of per-batch perplexities: {sum(per_batch) / 2:.2f}   <- wrong")
print(f"data-set perplexity exp(sum NLL / sum N): {data_set:.2f} (by hand {nll.mean().exp().item():.2f})")
print(f"token accuracy over both batches: {acc.compute().item():.4f} on {int(acc.token_count)} tokens")
assert abs(data_set - nll.mean().exp().item()) < 1e-3 * data_set
assert sum(per_batch) / 2 > 2 * data_set  # the naive mean is more than twice too high here

# %% [markdown] en
# ### Exercise: perplexity of a data set
#
# Write `my_perplexity(nll_sums, token_counts)`: given each batch's *sum* of NLL and its number
# of valid tokens (two lists), return the perplexity of the whole data set as a float. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Perplexität eines Datensatzes
#
# Schreiben Sie `my_perplexity(nll_sums, token_counts)`: Gegeben sind die *Summe* der NLL und
# die Zahl gültiger Tokens jedes Batches (zwei Listen); geben Sie die Perplexität des ganzen
# Datensatzes als float zurück. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_perplexity(nll_sums, token_counts):
    """Per-batch NLL sums and token counts -> the data set's perplexity (a float)."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_perplexity(nll_sums, token_counts):
    return math.exp(sum(nll_sums) / sum(token_counts))  # sums first, then one exp

# %%
result = check("perplexity", my_perplexity, lang=LANG)

# %% [markdown] en
# ## Summary
#
# * The loss of a position is $-\log p_y = -z_y + \log\sum_u e^{z_u}$; with the maximum subtracted
#   first (log-sum-exp) it cannot overflow.
# * Labels are the inputs shifted one step left; the last position and padding get `ignore_index` and
#   count neither in the sum nor in $N$. A batch with no target at all has the value `nan` in PyTorch
#   (with a zero gradient) and 0.0 in the library.
# * Label smoothing trains towards $q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon / V$; its
#   loss is $(1-\varepsilon)$ CE $+\ \varepsilon$ CE(uniform), and its lowest reachable value is the
#   entropy of $q$, not 0. On the toy language the smoothed model of this seeded run is
#   underconfident.
# * A data set's perplexity is $\exp(\sum \mathrm{NLL} / \sum N)$, not the mean of per-batch
#   perplexities.
#
# ## Check your understanding
#
# 1. Why compute $\log\sum_u e^{z_u}$ as $m + \log\sum_u e^{z_u - m}$ with $m = \max_u z_u$?
#    <details><summary>Answer</summary>It is the same number, but e^z overflows float32 above z ≈ 88; after subtracting the maximum every exponent is ≤ 0 and the largest term is 1.</details>
# 2. A batch has 24 label positions, 5 of them `ignore_index`. What do you divide the summed loss by, and what goes wrong with 24?
#    <details><summary>Answer</summary>By 19, the valid targets. Dividing by 24 shrinks loss and gradient by 19/24, and by a different factor in every batch, depending on how much padding it holds.</details>
# 3. With ε = 0.1 and V = 16, what probability does the best smoothed model put on a target it is sure about?
#    <details><summary>Answer</summary>1 − ε + ε/V = 0.90625, and ε/V = 0.00625 on each other token. Its loss there is H(q) > 0, not 0.</details>
# 4. The training loss of the smoothed run sits above the plain run's. Is the smoothed model worse?
#    <details><summary>Answer</summary>Not necessarily: its training loss contains ε times the cross-entropy to the uniform distribution and cannot go below H(q). Compare the validation losses, which are the plain cross-entropy for both.</details>
# 5. Two batches: 1000 tokens at mean NLL 2.0, 10 tokens at mean NLL 6.0. What is the data set's perplexity, and what does averaging the two perplexities give?
#    <details><summary>Answer</summary>exp((2000 + 60) / 1010) ≈ 7.69. The mean of e² ≈ 7.39 and e⁶ ≈ 403 is about 205: the 10-token batch dominates.</details>
# 6. Does label smoothing always improve calibration?
#    <details><summary>Answer</summary>No. It helps a model that is overconfident. A model at the cross-entropy optimum of an uncertain source is already close to calibrated, and smoothing makes it underconfident, as in this notebook's seeded run.</details>

# %% [markdown] de
# ## Zusammenfassung
#
# * Der Verlust einer Position ist $-\log p_y = -z_y + \log\sum_u e^{z_u}$; mit vorher abgezogenem
#   Maximum (Log-Sum-Exp) kann er nicht überlaufen.
# * Die Labels sind die um einen Schritt nach links verschobenen Eingaben; die letzte Position und
#   Padding bekommen `ignore_index` und gehen weder in die Summe noch in $N$ ein. Ein Batch ganz ohne Ziel
#   hat in PyTorch den Wert `nan` (mit Gradient null) und in der Bibliothek 0,0.
# * Label Smoothing trainiert auf $q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon / V$ hin;
#   sein Verlust ist $(1-\varepsilon)$ CE $+\ \varepsilon$ CE(Gleichverteilung, $p$), und sein kleinster
#   erreichbarer Wert ist die Entropie von $q$, nicht 0. Auf der Spielzeugsprache ist das geglättete
#   Modell dieses Laufs mit festem Seed unterkonfident.
# * Die Perplexität eines Datensatzes ist $\exp(\sum \mathrm{NLL} / \sum N)$, nicht der Mittelwert
#   der Perplexitäten einzelner Batches.
#
# ## Verständnisfragen
#
# 1. Warum berechnet man $\log\sum_u e^{z_u}$ als $m + \log\sum_u e^{z_u - m}$ mit $m = \max_u z_u$?
#    <details><summary>Antwort</summary>Es ist dieselbe Zahl, aber e^z läuft in float32 oberhalb von z ≈ 88 über; nach dem Abzug des Maximums ist jeder Exponent ≤ 0 und der größte Summand 1.</details>
# 2. Ein Batch hat 24 Label-Positionen, 5 davon `ignore_index`. Durch welche Zahl teilen Sie den summierten Verlust, und was geht mit 24 schief?
#    <details><summary>Antwort</summary>Durch 19, die gültigen Ziele. Mit 24 schrumpfen Verlust und Gradient um den Faktor 19/24, und zwar in jedem Batch um einen anderen Faktor, je nachdem, wie viel Padding er enthält.</details>
# 3. Welche Wahrscheinlichkeit gibt das beste geglättete Modell mit ε = 0,1 und V = 16 einem Ziel, bei dem es sich sicher ist?
#    <details><summary>Antwort</summary>1 − ε + ε/V = 0,90625, und ε/V = 0,00625 jedem anderen Token. Sein Verlust dort ist H(q) > 0, nicht 0.</details>
# 4. Der Trainingsverlust des geglätteten Laufs liegt über dem des einfachen. Ist das geglättete Modell schlechter?
#    <details><summary>Antwort</summary>Nicht unbedingt: Sein Trainingsverlust enthält ε mal die Kreuzentropie zur Gleichverteilung und kann nicht unter H(q) fallen. Vergleichen Sie die Validierungsverluste, die für beide die einfache Kreuzentropie sind.</details>
# 5. Zwei Batches: 1000 Tokens mit mittlerer NLL 2,0, 10 Tokens mit mittlerer NLL 6,0. Wie groß ist die Perplexität des Datensatzes, und was ergibt der Mittelwert der beiden Perplexitäten?
#    <details><summary>Antwort</summary>exp((2000 + 60) / 1010) ≈ 7,69. Der Mittelwert von e² ≈ 7,39 und e⁶ ≈ 403 ist etwa 205: Der Batch aus 10 Tokens dominiert.</details>
# 6. Verbessert Label Smoothing immer die Kalibrierung?
#    <details><summary>Antwort</summary>Nein. Es hilft einem überkonfidenten Modell. Ein Modell im Optimum der Kreuzentropie einer unsicheren Quelle ist schon nahezu kalibriert, und die Glättung macht es unterkonfident, wie im Lauf mit festem Seed in diesem Notebook.</details>
