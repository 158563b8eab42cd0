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
# 5. Training mit und ohne Label Smoothing auf einer Spielsprache – und was es mit der Kalibrierung macht;
# 6. Perplexität, Token-Genauigkeit und eine Falle beim Aufsummieren über Batches.
#
# Jede Zahl im Text wird von einer Zelle ausgegeben oder mit einem `assert` geprüft.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from aptt_edu import shift_labels
from aptt_edu.loss.language_modeling import (
    LanguageModelingLoss,
    PerplexityMetric,
    TokenAccuracyMetric,
    label_smoothed_cross_entropy_textbook,
)

torch.manual_seed(0)
torch.set_num_threads(1)  # one thread: reproducible sums, and faster on a busy 2-core machine
torch.set_printoptions(precision=4, sci_mode=False)

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

# %%
B, T, V = 2, 5, 7  # batch, sequence length, vocabulary size
logits = torch.randn(B, T, V)  # (B, T, V)
labels = torch.randint(0, V, (B, T))  # (B, T)


def nll_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    z = logits - logits.max(dim=-1, keepdim=True).values  # stable: largest logit is 0
    log_p = z - z.exp().sum(dim=-1, keepdim=True).log()  # (B, T, V) log-softmax
    return -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1).mean()  # mean of -log p_y


by_hand = nll_by_hand(logits, labels)
pytorch = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1))
library = LanguageModelingLoss(vocab_size=V)(logits, labels)
print(f"by hand {by_hand.item():.6f} | F.cross_entropy {pytorch.item():.6f} | aptt_edu {library.item():.6f}")
assert torch.allclose(by_hand, pytorch, atol=1e-6) and torch.allclose(library, pytorch, atol=1e-6)

# %% [markdown] en
# A useful anchor: a model that knows nothing predicts the uniform distribution, $p_v = 1/V$, and
# its loss is $\log V$. Any trained model must beat that.
# %% [markdown] de
# Ein nützlicher Anker: Ein Modell, das nichts weiß, sagt die Gleichverteilung $p_v = 1/V$ voraus;
# sein Verlust ist $\log V$. Jedes trainierte Modell muss darunter liegen.

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
# no defined mean (0/0). PyTorch returns `nan`, which poisons every parameter it touches through the
# optimizer. `LanguageModelingLoss` returns 0 with zero gradients, so such a batch simply does
# nothing.
# %% [markdown] de
# Ein bewusster Unterschied zu `F.cross_entropy`: Ein Batch, in dem *jede* Position Padding ist, hat
# keinen definierten Mittelwert (0/0). PyTorch liefert `nan` – und das vergiftet über den Optimierer
# jeden Parameter, den es erreicht. `LanguageModelingLoss` liefert 0 mit Gradient 0, ein solcher
# Batch bewirkt also einfach nichts.

# %%
all_pad = torch.full((B, T), -100)
z = logits.clone().requires_grad_()
ours = loss_fn(z, all_pad)
ours.backward()
theirs = F.cross_entropy(logits.reshape(-1, V), all_pad.reshape(-1))
print(f"F.cross_entropy: {theirs.item()} | aptt_edu: {ours.item()}, max |grad| = {z.grad.abs().max().item()}")
assert math.isnan(theirs.item()) and ours.item() == 0.0 and z.grad.abs().max() == 0

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
# Gleichverteilung. Mit Glättungsstärke $\varepsilon$:
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
# Das Beste, was ein Modell an einer Position tun kann, bei der es sich *sicher* ist, ist also, $q$
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
# Dasselbe als Bild: eine Position, Ziel-Logit $m$, alle anderen Logits 0. Ohne Label Smoothing fällt
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
# ## 5. Training with and without label smoothing
#
# Now a real model: a tiny Transformer (`aptt_edu.model.GPT`) trained on a *toy language* — an
# order-2 Markov chain over 16 letters whose **entropy rate** $H$ the package computes exactly
# (`aptt_edu.data`). $H$ is the lowest cross-entropy any model can reach on this source: the dashed
# line. Both runs share seed, data and everything else; only the training loss differs. The
# validation loss is always the *plain* cross-entropy, so the two runs are comparable.
# %% [markdown] de
# ## 5. Training mit und ohne Label Smoothing
#
# Jetzt ein echtes Modell: ein winziger Transformer (`aptt_edu.model.GPT`), trainiert auf einer
# *Spielsprache* – einer Markow-Kette 2. Ordnung über 16 Buchstaben, deren **Entropierate** $H$ das
# Paket exakt berechnet (`aptt_edu.data`). $H$ ist die kleinste Kreuzentropie, die irgendein Modell
# auf dieser Quelle erreichen kann: die gestrichelte Linie. Beide Läufe teilen Seed, Daten und alles
# andere; nur der Trainingsverlust unterscheidet sich. Der Validierungsverlust ist immer die
# *einfache* Kreuzentropie, damit beide Läufe vergleichbar sind.

# %% tags=["nbval-ignore-output"]
from aptt_edu.data import make_inputs_and_labels
from aptt_edu.plotting import plot_loss_curves
from aptt_edu.train import TrainConfig, train

runs = {f"ε = {e}": train(TrainConfig(label_smoothing=e, seed=0, progress=False)) for e in (0.0, 0.1)}
H = runs["ε = 0.0"].entropy_rate
for name, h in runs.items():
    print(f"{name}: final validation loss {h.val_loss[-1]:.4f} nats, gap to H = {h.val_loss[-1] - H:.4f}")
print(f"entropy rate H = {H:.4f} nats/token")
ax = plot_loss_curves(runs, floor=H, ylim=(H - 0.1, H + 1.0))
ax.set_title("Validation loss (thick) and training loss (faint)")
plt.show()

# %% [markdown] en
# The faint training curve of the smoothed run sits higher: it includes the smoothing term, which
# cannot go to zero (section 4). What matters is the validation loss.
#
# ### Calibration: does a predicted 80 % come true 80 % of the time?
#
# A model is **calibrated** when, among all predictions made with confidence $c$, a fraction $c$ is
# correct. The reliability diagram bins the validation positions by the model's top probability and
# plots the accuracy in each bin against the mean confidence; the diagonal is perfect calibration.
# The **expected calibration error** (ECE) is the token-weighted mean distance to the diagonal.
# Label smoothing is known to change calibration (Müller et al., 2019: it improves it for image
# classifiers); on our toy source the true next-token distribution is itself uncertain, so the best
# model is the one that predicts it exactly — let us look at what smoothing does here.
# %% [markdown] de
# Die blasse Trainingskurve des geglätteten Laufs liegt höher: Sie enthält den Glättungsterm, der
# nicht gegen null gehen kann (Abschnitt 4). Entscheidend ist der Validierungsverlust.
#
# ### Kalibrierung: Trifft eine vorhergesagte 80 % auch in 80 % der Fälle zu?
#
# Ein Modell ist **kalibriert**, wenn von allen Vorhersagen mit Konfidenz $c$ ein Anteil $c$ stimmt.
# Das Reliability-Diagramm sortiert die Validierungspositionen nach der höchsten Wahrscheinlichkeit
# des Modells in Klassen und trägt die Genauigkeit jeder Klasse gegen die mittlere Konfidenz auf;
# die Diagonale ist perfekte Kalibrierung. Der **Expected Calibration Error** (ECE) ist der mit der
# Tokenzahl gewichtete mittlere Abstand zur Diagonale. Label Smoothing verändert bekanntlich die
# Kalibrierung (Müller et al., 2019: bei Bildklassifikatoren verbessert es sie); auf unserer
# Spielsprache ist schon die wahre Verteilung des nächsten Tokens unsicher, das beste Modell ist also
# das, das sie genau trifft – sehen wir nach, was Label Smoothing hier bewirkt.

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
# Read the diagram against the popular claim. Smoothing did lower the confidence, but the smoothed
# model's points lie *above* the diagonal: it is now **underconfident** — right more often than it
# says — and its calibration error is larger than the plain model's. That does not contradict Müller
# et al.: label smoothing helps calibration when a model is *over*confident, as large image
# classifiers trained on one-hot labels are. A model trained with plain cross-entropy on a source
# that is itself uncertain is already close to calibrated, because the cross-entropy is minimised by
# the true distribution; pulling it towards uniform can only move it away.
# %% [markdown] de
# Lesen wir das Diagramm gegen die verbreitete Behauptung. Label Smoothing hat die Konfidenz zwar
# gesenkt, aber die Punkte des geglätteten Modells liegen *über* der Diagonale: Es ist jetzt
# **unterkonfident** – es liegt öfter richtig, als es angibt –, und sein Kalibrierungsfehler ist
# größer als der des einfachen Modells. Das widerspricht Müller et al. nicht: Label Smoothing hilft
# der Kalibrierung, wenn ein Modell *über*konfident ist, wie große, mit One-Hot-Labels trainierte
# Bildklassifikatoren. Ein Modell, das mit einfacher Kreuzentropie auf einer selbst unsicheren Quelle
# trainiert wurde, ist schon nahezu kalibriert, denn die Kreuzentropie wird von der wahren Verteilung
# minimiert; es in Richtung Gleichverteilung zu ziehen, kann es davon nur entfernen.

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
# mean (Jensen's inequality). Two batches of very different length show the size of the error:
# %% [markdown] de
# ## 6. Perplexität, Token-Genauigkeit und eine Falle beim Aufsummieren
#
# Die **Perplexität** ist die Exponentialfunktion der mittleren negativen Log-Likelihood,
# $\mathrm{PPL} = \exp\big(\frac{1}{N}\sum_i -\log p_{i,y_i}\big)$: die Zahl gleich wahrscheinlicher
# Tokens, zwischen denen das Modell im Mittel wählt (Gleichverteilung über $V$ ergibt genau $V$).
# Die **Token-Genauigkeit** ist der Anteil der Positionen, deren Ziel das Token mit dem höchsten Logit
# ist.
#
# Über einen ganzen Datensatz muss man die Perplexität aus *Summen* berechnen:
# $\exp(\sum \text{NLL} / \sum N)$. Per-Batch-Perplexitäten zu mitteln ist ein verbreiteter Fehler:
# Ein kurzer Batch zählt dann so viel wie ein langer, und weil $\exp$ konvex ist, ist der Mittelwert
# der Exponentiale nie kleiner als die Exponentialfunktion des Mittelwerts (Jensensche Ungleichung).
# Zwei sehr unterschiedlich lange Batches zeigen, wie groß der Fehler werden kann:

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
