# %% [markdown] en
# # 00 · Foundations: entropy, the toy language, and the tiny model
#
# Every later notebook measures a loss against a floor, trains a tiny Transformer on a toy language
# and uses one fact about the gradient of the cross-entropy. This notebook introduces all of them
# once, so that nothing later arrives unexplained.
#
# **Goals.** After this notebook you can
#
# 1. say what entropy, cross-entropy and KL divergence measure, and why no model's expected loss
#    can go below the entropy of the source;
# 2. compute that floor for the course's toy language and read a loss curve against it;
# 3. derive the gradient of the cross-entropy with respect to the logits, $p - \mathrm{onehot}(y)$;
# 4. build and train the tiny GPT that the other notebooks train.
#
# **Prerequisites.** Python, basic PyTorch (tensors, `autograd`, `nn.Module`), the softmax.
# **Time.** About 20 minutes of reading, plus two exercises; running every cell takes under a minute.
# **Builds on.** Nothing; notebooks 01–06 build on it.

# %% [markdown] de
# # 00 · Grundlagen: Entropie, die Spielzeugsprache und das kleine Modell
#
# Jedes spätere Notebook misst einen Verlust an einer Untergrenze, trainiert einen winzigen
# Transformer auf einer Spielzeugsprache und nutzt eine Tatsache über den Gradienten der
# Kreuzentropie. Dieses Notebook führt all das einmal ein, damit später nichts unerklärt auftaucht.
#
# **Lernziele.** Nach diesem Notebook können Sie
#
# 1. sagen, was Entropie, Kreuzentropie und KL-Divergenz messen und warum der erwartete Verlust
#    keines Modells unter die Entropie der Quelle fallen kann;
# 2. diese Untergrenze für die Spielzeugsprache des Kurses berechnen und eine Verlustkurve an
#    ihr ablesen;
# 3. den Gradienten der Kreuzentropie nach den Logits herleiten, $p - \mathrm{onehot}(y)$;
# 4. das winzige GPT bauen und trainieren, das auch die anderen Notebooks verwenden.
#
# **Voraussetzungen.** Python, PyTorch-Grundlagen (Tensoren, `autograd`, `nn.Module`), die
# Softmax-Funktion.
# **Zeit.** Etwa 20 Minuten Lesezeit, dazu zwei Aufgaben; alle Zellen laufen in unter einer
# Minute.
# **Grundlage.** Keine; die Notebooks 01–06 bauen auf diesem auf.
# **Sprache.** Abbildungen, Code, Code-Kommentare und Zellausgaben sind in beiden Sprachfassungen
# englisch; der Text erklärt, was sie zeigen.

# %%
import math

import matplotlib.pyplot as plt
import torch

from aptt_edu.data import toy_data
from aptt_edu.exercises import check
from aptt_edu.model import GPT, GPTConfig
from aptt_edu.plotting import plot_loss_curves
from aptt_edu.training import TrainConfig, train

torch.manual_seed(0)
torch.set_num_threads(1)  # one thread: the same float sums on any machine

# %% en tags=["language"]
LANG = "en"  # the language of the exercises' feedback (the German notebook sets "de")

# %% de tags=["language"]
LANG = "de"  # die Sprache der Rückmeldungen zu den Aufgaben (das englische Notebook setzt "en")

# %% [markdown] en
# ## 1. Entropy, cross-entropy and KL divergence
#
# A distribution $p$ over $V$ tokens has the **entropy**
# $H(p) = -\sum_v p_v \log p_v$ (in nats, with the natural logarithm, and $0 \log 0 = 0$): the
# average surprise $-\log p_v$ of a token drawn from $p$. It is 0 for a certain outcome and
# $\log V$ for the uniform distribution.
#
# A model that predicts $q$ while the tokens come from $p$ pays on average the **cross-entropy**
# $H(p, q) = -\sum_v p_v \log q_v$ — exactly the expected value of the training loss $-\log q_y$
# when $y \sim p$. The difference is the **Kullback–Leibler divergence**
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_v p_v \log \frac{p_v}{q_v} = H(p, q) - H(p) \;\ge\; 0,$$
#
# which is zero only for $q = p$ (Gibbs' inequality; Cover & Thomas, *Elements of Information
# Theory*, 2nd ed., Thm. 2.6.3). So $H(p, q) \ge H(p)$: **no model's expected loss can go below the
# entropy of the source**, and the best model predicts the source's own distribution. This is the
# floor every loss curve in the course is drawn against.

# %% [markdown] de
# ## 1. Entropie, Kreuzentropie und KL-Divergenz
#
# Eine Verteilung $p$ über $V$ Tokens hat die **Entropie** $H(p) = -\sum_v p_v \log p_v$ (in nat,
# mit dem natürlichen Logarithmus und $0 \log 0 = 0$): die mittlere Überraschung $-\log p_v$ eines
# aus $p$ gezogenen Tokens. Sie ist 0 für ein sicheres Ergebnis und $\log V$ für die
# Gleichverteilung.
#
# Ein Modell, das $q$ vorhersagt, während die Tokens aus $p$ stammen, zahlt im Mittel die
# **Kreuzentropie** $H(p, q) = -\sum_v p_v \log q_v$ – genau den Erwartungswert des
# Trainingsverlusts $-\log q_y$ für $y \sim p$. Die Differenz ist die
# **Kullback-Leibler-Divergenz**
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_v p_v \log \frac{p_v}{q_v} = H(p, q) - H(p) \;\ge\; 0,$$
#
# die nur für $q = p$ null ist (Gibbs-Ungleichung; Cover & Thomas, *Elements of Information
# Theory*, 2. Aufl., Satz 2.6.3). Also gilt $H(p, q) \ge H(p)$: **Der erwartete Verlust keines
# Modells kann unter die Entropie der Quelle fallen**, und das beste Modell sagt die Verteilung der
# Quelle selbst vorher. An dieser Untergrenze wird jede Verlustkurve des Kurses gemessen.

# %%
p = torch.tensor([0.5, 0.25, 0.125, 0.125])  # the source
q = torch.tensor([0.4, 0.3, 0.2, 0.1])  # a model's prediction
H_p = -(p * p.log()).sum()  # entropy of the source
H_pq = -(p * q.log()).sum()  # cross-entropy: the model's expected loss
KL = (p * (p / q).log()).sum()
print(f"H(p) = {H_p:.4f}   H(p, q) = {H_pq:.4f}   KL(p || q) = {KL:.4f}   log V = {math.log(4):.4f}")
assert torch.isclose(H_pq, H_p + KL) and KL > 0  # H(p, q) = H(p) + KL(p || q) >= H(p)

# the expected loss of a model that predicts q, estimated by drawing tokens from p
y = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
print(f"mean of -log q_y over 200,000 draws y ~ p: {-q.log()[y].mean():.2f} (H(p, q) = {H_pq:.2f})")
assert abs(-q.log()[y].mean() - H_pq) < 0.01

# %% [markdown] en
# The entropy of this $p$ is exactly $1.75 \log 2$ nats (1.75 bits): each halving of the
# probability costs one bit. Now the same quantities as code of your own.
# %% [markdown] de
# Die Entropie dieses $p$ ist genau $1{,}75 \log 2$ nat (1,75 Bit): Jede Halbierung der
# Wahrscheinlichkeit kostet ein Bit. Nun berechnen Sie dieselben Größen mit eigenem Code.

# %% [markdown] en
# ### Exercise: entropy
#
# Write `my_entropy(p)`: for probabilities `p` of shape `(..., V)` the entropy of each
# distribution, shape `(...)`, in nats, with $0 \log 0 = 0$. Fill in the function below and run the
# `check` cell: it tests your code on several inputs and, if something is off, says which mistake it
# sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Entropie
#
# Schreiben Sie `my_entropy(p)`: für Wahrscheinlichkeiten `p` der Form `(..., V)` die Entropie jeder
# Verteilung, Form `(...)`, in nat, mit $0 \log 0 = 0$. Vervollständigen Sie die Funktion unten und führen
# Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie
# erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es
# zuerst selbst.

# %%
def my_entropy(p):
    """(..., V) probabilities -> (...) entropy in nats, with 0 log 0 = 0."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_entropy(p):
    return -torch.special.xlogy(p, p).sum(dim=-1)  # xlogy(0, 0) = 0, where 0 * log 0 would be nan

# %%
result = check("entropy", my_entropy, lang=LANG)

# %% [markdown] en
# ### Exercise: KL divergence
#
# Write `my_kl(p, q)`: for two tensors of probabilities `(..., V)` the divergence
# $\mathrm{KL}(p \,\|\, q)$ of each pair, shape `(...)`, in nats. Fill in the function below and
# run the `check` cell; the solution is folded below the stub.

# %% [markdown] de
# ### Aufgabe: KL-Divergenz
#
# Schreiben Sie `my_kl(p, q)`: für zwei Tensoren von Wahrscheinlichkeiten `(..., V)` die Divergenz
# $\mathrm{KL}(p \,\|\, q)$ jedes Paars, Form `(...)`, in nat. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; die Lösung ist unter dem Gerüst eingeklappt.

# %%
def my_kl(p, q):
    """(..., V) and (..., V) probabilities -> (...) KL(p || q) in nats."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_kl(p, q):
    # sum_v p_v log(p_v / q_v) = sum_v [p log p - p log q], each term 0 where p_v = 0
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(dim=-1)

# %%
result = check("kl_divergence", my_kl, lang=LANG)

# %% [markdown] en
# ## 2. The toy language and its floor
#
# On real text nobody knows how low the loss *could* go, so a number like "2.1" says little. The
# course therefore trains on a **toy language** whose floor is known exactly: a random order-2
# Markov chain over $V = 16$ letters, where the next letter depends on the previous two
# (`aptt_edu.data.ToyLanguage`). Each two-letter context $c$ has a few likely successors and a
# little probability ($\varepsilon = 0.02$) spread over all letters, so every letter can follow
# every context.
#
# For such a source the floor of section 1 is the **entropy rate**
# $H = \sum_c \pi(c)\, H\big(P(\cdot \mid c)\big)$: the entropy of the next letter given its
# context, averaged with the chain's stationary distribution $\pi$ over contexts. A model that
# knew the true table $P$ would have expected loss $H$; every model has at least that.
# `toy_data` draws the table, samples training and validation rows from it with different seeds,
# and computes $H$.

# %% [markdown] de
# ## 2. Die Spielzeugsprache und ihre Untergrenze
#
# Bei echtem Text weiß niemand, wie tief der Verlust sinken *könnte*; eine Zahl wie „2,1“ sagt
# deshalb wenig. Der Kurs trainiert daher auf einer **Spielzeugsprache**, deren Untergrenze genau
# bekannt ist: einer zufälligen Markow-Kette 2. Ordnung über $V = 16$ Buchstaben, bei der der
# nächste Buchstabe von den beiden vorigen abhängt (`aptt_edu.data.ToyLanguage`). Jeder Kontext
# $c$ aus zwei Buchstaben hat wenige wahrscheinliche Nachfolger und ein wenig Wahrscheinlichkeit
# ($\varepsilon = 0{,}02$), die über alle Buchstaben verteilt ist, sodass jeder Buchstabe auf jeden
# Kontext folgen kann.
#
# Für eine solche Quelle ist die Untergrenze aus Abschnitt 1 die **Entropierate**
# $H = \sum_c \pi(c)\, H\big(P(\cdot \mid c)\big)$: die Entropie des nächsten Buchstabens bei
# gegebenem Kontext, gemittelt mit der stationären Verteilung $\pi$ der Kette über die Kontexte. Ein
# Modell, das die wahre Tabelle $P$ kennte, hätte den erwarteten Verlust $H$; jedes Modell hat
# mindestens so viel. `toy_data` zieht die Tabelle, zieht Trainings- und Validierungszeilen mit
# verschiedenen Seeds daraus und berechnet $H$.

# %%
cfg = TrainConfig(progress=False)  # the package defaults: 300 steps, batches of 48 rows of 32 tokens
data = toy_data(seq_len=cfg.seq_len, n_train=cfg.n_train_rows, n_val=cfg.n_val_rows,
                vocab_size=cfg.toy_vocab_size, seed=cfg.seed)
print(data.description)
print("a training row:", data.decode(data.train[0]))
print(f"entropy rate H = {data.entropy_rate:.4f} nats/token; uniform guessing: log V = "
      f"{math.log(data.vocab_size):.4f}")
print(f"the true source's own mean loss on the validation rows: {data.val_floor:.4f}")
assert data.entropy_rate < math.log(data.vocab_size)
assert abs(data.val_floor - data.entropy_rate) < 0.05  # a finite sample scatters around H

# %% [markdown] en
# Two details every later notebook relies on. The validation rows are a finite sample, so even the
# true source scores a little above or below $H$ on them (the last line). And the first two
# letters of a row have no full two-letter context, so their targets are ignored in every loss
# (`data.context_warmup` = 2): no model could predict them as well as the rest.
# %% [markdown] de
# Zwei Details, auf die sich jedes spätere Notebook stützt. Die Validierungszeilen sind eine endliche
# Stichprobe, deshalb liegt selbst die wahre Quelle auf ihnen etwas über oder unter $H$ (letzte
# Ausgabezeile). Und die ersten beiden Buchstaben einer Zeile haben keinen vollständigen Kontext aus zwei
# Buchstaben; ihre Ziele werden deshalb in jedem Verlust ignoriert (`data.context_warmup` = 2): Kein
# Modell könnte sie so gut vorhersagen wie den Rest.

# %% [markdown] en
# ## 3. The gradient of the cross-entropy: $p - \mathrm{onehot}(y)$
#
# Training moves the logits $z$ against the gradient of the loss. For one position with target $y$,
# $p = \mathrm{softmax}(z)$ and
#
# $$\ell = -\log p_y = -z_y + \log \sum_u e^{z_u}
# \qquad\Longrightarrow\qquad
# \frac{\partial \ell}{\partial z_v} = \frac{e^{z_v}}{\sum_u e^{z_u}} - [v = y] = p_v - \mathrm{onehot}(y)_v .$$
#
# The gradient is the prediction minus the target: it pushes the target's logit up by $1 - p_y$ and
# every other logit down by its probability, its entries sum to zero, and each lies in $[-1, 1]$ —
# however large the logits are. Notebooks 01 (label smoothing), 02 (the gradient of a tied
# matrix) and 05 (the chunked loss) build on this one line; with label smoothing the target
# `onehot(y)` becomes a smoothed distribution $q$ and the gradient $p - q$.

# %% [markdown] de
# ## 3. Der Gradient der Kreuzentropie: $p - \mathrm{onehot}(y)$
#
# Das Training bewegt die Logits $z$ entgegen dem Gradienten des Verlusts. Für eine Position mit Ziel
# $y$, $p = \mathrm{softmax}(z)$ und
#
# $$\ell = -\log p_y = -z_y + \log \sum_u e^{z_u}
# \qquad\Longrightarrow\qquad
# \frac{\partial \ell}{\partial z_v} = \frac{e^{z_v}}{\sum_u e^{z_u}} - [v = y] = p_v - \mathrm{onehot}(y)_v .$$
#
# Der Gradient ist Vorhersage minus Ziel: Er hebt den Logit des Ziels um $1 - p_y$ an und senkt
# jeden anderen Logit um seine Wahrscheinlichkeit; seine Einträge summieren sich zu null, und jeder
# liegt in $[-1, 1]$ – wie groß die Logits auch sind. Die Notebooks 01 (Label Smoothing), 02 (der
# Gradient einer gebundenen Matrix) und 05 (der blockweise berechnete Verlust) bauen auf dieser einen Zeile auf;
# mit Label Smoothing wird aus dem Ziel `onehot(y)` eine geglättete Verteilung $q$ und aus dem
# Gradienten $p - q$.

# %%
z = torch.randn(5, 16, generator=torch.Generator().manual_seed(1)).requires_grad_()  # 5 positions
targets = torch.tensor([3, 0, 15, 7, 7])
loss = torch.nn.functional.cross_entropy(z, targets, reduction="sum")
loss.backward()
by_hand = z.detach().softmax(dim=-1) - torch.nn.functional.one_hot(targets, 16)  # p - onehot(y)
print("p - onehot(y) == autograd:", torch.allclose(by_hand, z.grad, atol=1e-6))
assert torch.allclose(by_hand, z.grad, atol=1e-6)
assert torch.allclose(z.grad.sum(dim=-1), torch.zeros(5), atol=1e-6)  # each row sums to zero

# %% [markdown] en
# ## 4. The tiny GPT
#
# `aptt_edu.model.GPT` is a decoder-only Transformer of the GPT-2/Llama shape, deliberately small:
# token and position embeddings, `n_layer` pre-norm blocks (causal self-attention and an MLP), a
# final RMSNorm, and the library's output head. One block of width $d = 64$ is enough for an
# order-2 source: attention can fetch the previous letter, the MLP can look up the table. Its
# `forward` returns the main logits `(B, T, V)` and, when a multi-token head is configured and the
# model is in training mode, a list of extra logits (notebook 03); here that second value is
# `None`.

# %% [markdown] de
# ## 4. Das winzige GPT
#
# `aptt_edu.model.GPT` ist ein reiner Decoder-Transformer in der Bauform von GPT-2 und Llama, bewusst
# klein: Token- und Positions-Embeddings, `n_layer` Pre-Norm-Blöcke (kausale Self-Attention und ein
# MLP), eine abschließende RMSNorm und die Ausgabeschicht der Bibliothek. Ein Block der Breite
# $d = 64$ genügt für eine Quelle 2. Ordnung: Die Attention kann den vorigen Buchstaben holen, das MLP
# die Tabelle nachschlagen. Sein `forward` liefert die Haupt-Logits `(B, T, V)` und, wenn ein
# Multi-Token-Head konfiguriert ist und das Modell im Trainingsmodus ist, eine Liste weiterer Logits
# (Notebook 03); hier ist dieser zweite Wert `None`.

# %%
model = GPT(GPTConfig(vocab_size=data.vocab_size, block_size=cfg.seq_len, n_layer=cfg.n_layer,
                      n_head=cfg.n_head, d_model=cfg.d_model))
logits, extra = model(data.train[:2])  # (B=2, T=32) ids
print(f"ids {tuple(data.train[:2].shape)} -> logits {tuple(logits.shape)}, extra: {extra}")
print(f"{model.num_parameters():,} parameters")
assert logits.shape == (2, cfg.seq_len, data.vocab_size) and extra is None
# untrained (every matrix ~ N(0, 0.02^2)), the prediction is close to uniform: loss near log V
start = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, data.vocab_size),
                                          data.train[:2, 1:].reshape(-1))
print(f"untrained loss {start:.2f}, log V = {math.log(data.vocab_size):.2f}")
assert abs(start - math.log(data.vocab_size)) < 0.1

# %% [markdown] en
# ## 5. The training loop and one run against the floor
#
# `aptt_edu.training.train(config, data)` runs the loop every notebook uses: draw a batch of rows,
# shift the labels (position $t$ is scored on token $t + 1$, notebook 01), compute the loss,
# `backward()`, clip the gradient norm to 1, take an AdamW step with a warmed-up, cosine-decayed
# learning rate, and every 25 steps measure the plain cross-entropy on all validation rows. It
# returns a `History` with the curves and the trained model. The defaults (`TrainConfig()`) train
# for 300 steps in a few seconds.

# %% [markdown] de
# ## 5. Die Trainingsschleife und ein Lauf gegen die Untergrenze
#
# `aptt_edu.training.train(config, data)` führt die Schleife aus, die jedes Notebook verwendet: einen
# Batch von Zeilen ziehen, die Labels verschieben (Position $t$ wird am Token $t + 1$ gemessen,
# Notebook 01), den Verlust berechnen, `backward()` aufrufen, die Gradientennorm auf 1 begrenzen, einen
# AdamW-Schritt mit Warm-up und kosinusförmig abfallender Lernrate machen und alle 25 Schritte die
# einfache Kreuzentropie auf allen Validierungszeilen messen. Zurück kommt eine `History` mit den
# Kurven und dem trainierten Modell. Die Voreinstellungen (`TrainConfig()`) trainieren 300 Schritte,
# was einige Sekunden dauert.

# %% tags=["nbval-ignore-output"]
run = train(cfg, data)
ax = plot_loss_curves({"tiny GPT": run}, floor=data.entropy_rate)
ax.set_title("Validation loss of one seeded run, against the floor H")
plt.show()
gap = run.val_loss[-1] - data.entropy_rate
print(f"start {run.val_loss[0]:.3f}, end {run.val_loss[-1]:.3f}, H = {data.entropy_rate:.3f}: "
      f"{gap:.3f} nats above the floor after {run.step[-1]} steps")

# %% [markdown] en
# *Figure:* the validation loss (thick) and the training loss (faint) of one seeded run, with the
# entropy rate $H$ dashed. The curve falls steeply towards $H$ and flattens a little above it: the
# model is close to the true table, not on it. Notebooks 01–04 compare variants of the output side
# with exactly this plot and this floor.
# %% [markdown] de
# *Abbildung:* der Validierungsverlust (kräftig) und der Trainingsverlust (blass) eines Laufs mit
# festem Seed, gestrichelt die Entropierate $H$. Die Kurve fällt steil in Richtung $H$ und flacht
# knapp darüber ab: Das Modell liegt nahe an der wahren Tabelle, nicht auf ihr. Die Notebooks 01–04
# vergleichen Varianten der Ausgabeseite mit genau diesem Diagramm und dieser Untergrenze.

# %%
# invariants of this run (the printed numbers above depend on the CPU's float kernels)
assert run.val_loss[-1] < 0.5 * (run.val_loss[0] + data.entropy_rate)  # more than half the way down
assert run.val_loss[-1] > data.val_floor - 0.05  # never meaningfully below the true source

# %% [markdown] en
# ## Summary
#
# * Entropy $H(p)$ is the average surprise of a source; a model predicting $q$ pays the
#   cross-entropy $H(p, q) = H(p) + \mathrm{KL}(p \,\|\, q) \ge H(p)$. The floor of any loss is the
#   entropy of what is predicted.
# * The toy language is an order-2 Markov chain whose entropy rate $H$ is computed exactly; a finite
#   validation set scatters around it, and the first two targets of a row are ignored.
# * $\partial \ell / \partial z = p - \mathrm{onehot}(y)$: prediction minus target, bounded, summing
#   to zero.
# * The tiny GPT and `train` are what every later notebook uses; one seeded run ends a little above
#   $H$.
#
# ## Check your understanding
#
# 1. Why can no model's expected cross-entropy be lower than the entropy of the source?
#    <details><summary>Answer</summary>Because H(p, q) = H(p) + KL(p ‖ q) and KL ≥ 0, with equality
#    only for q = p.</details>
# 2. A model's validation loss on the toy language is 0.01 below $H$. Is the model better than the
#    true source?
#    <details><summary>Answer</summary>No. H is an expectation; a finite validation set has its own
#    mean, which the true source itself misses by a little (section 2). Compare with the true
#    source's loss on the same rows.</details>
# 3. Is KL(p ‖ q) the same as KL(q ‖ p)? Which one does training with cross-entropy minimise?
#    <details><summary>Answer</summary>No, KL is not symmetric. Training minimises H(p, q) over q,
#    i.e. KL(p ‖ q), the divergence weighted by the data distribution p.</details>
# 4. The target's probability is already $p_y = 0.99$. How large is the gradient on its logit, and
#    on the others?
#    <details><summary>Answer</summary>p_y − 1 = −0.01 on the target's logit, and p_v on every
#    other logit (together +0.01): almost nothing left to learn at this position.</details>
# 5. Why is the loss of the first two positions of each row ignored?
#    <details><summary>Answer</summary>Their targets lack a full two-letter context, so even the true
#    source predicts them worse than H; counting them would hide how close the model gets to the
#    floor.</details>
# 6. What would the untrained model's loss be if its prediction were exactly uniform?
#    <details><summary>Answer</summary>log V = log 16 ≈ 2.77 nats, the entropy of the uniform
#    distribution.</details>

# %% [markdown] de
# ## Zusammenfassung
#
# * Die Entropie $H(p)$ ist die mittlere Überraschung einer Quelle; ein Modell, das $q$ vorhersagt,
#   zahlt die Kreuzentropie $H(p, q) = H(p) + \mathrm{KL}(p \,\|\, q) \ge H(p)$. Die Untergrenze jedes
#   Verlusts ist die Entropie dessen, was vorhergesagt wird.
# * Die Spielzeugsprache ist eine Markow-Kette 2. Ordnung, deren Entropierate $H$ exakt berechnet
#   wird; der Verlust auf endlichen Validierungsdaten streut um sie, und die ersten beiden Ziele einer Zeile
#   werden ignoriert.
# * $\partial \ell / \partial z = p - \mathrm{onehot}(y)$: Vorhersage minus Ziel, beschränkt, mit
#   Summe null.
# * Alle späteren Notebooks verwenden das winzige GPT und `train`; ein Lauf mit festem Seed endet
#   knapp über $H$.
#
# ## Verständnisfragen
#
# 1. Warum kann die erwartete Kreuzentropie keines Modells unter der Entropie der Quelle liegen?
#    <details><summary>Antwort</summary>Weil H(p, q) = H(p) + KL(p ‖ q) und KL ≥ 0 gilt, mit
#    Gleichheit nur für q = p.</details>
# 2. Der Validierungsverlust eines Modells auf der Spielzeugsprache liegt 0,01 unter $H$. Ist das
#    Modell besser als die wahre Quelle?
#    <details><summary>Antwort</summary>Nein. H ist ein Erwartungswert; endliche
#    Validierungsdaten haben ihren eigenen Mittelwert, den selbst die wahre Quelle etwas verfehlt
#    (Abschnitt 2). Vergleichen Sie mit dem Verlust der wahren Quelle auf denselben Zeilen.</details>
# 3. Ist KL(p ‖ q) dasselbe wie KL(q ‖ p)? Welche von beiden wird beim Training mit
#    Kreuzentropie minimiert?
#    <details><summary>Antwort</summary>Nein, KL ist nicht symmetrisch. Das Training minimiert
#    H(p, q) über q, also KL(p ‖ q), die mit der Datenverteilung p gewichtete Divergenz.</details>
# 4. Die Wahrscheinlichkeit des Ziels ist schon $p_y = 0{,}99$. Wie groß ist der Gradient auf seinem
#    Logit und auf den anderen?
#    <details><summary>Antwort</summary>p_y − 1 = −0,01 auf dem Logit des Ziels und p_v auf jedem
#    anderen Logit (zusammen +0,01): An dieser Position bleibt fast nichts zu lernen.</details>
# 5. Warum wird der Verlust der ersten beiden Positionen jeder Zeile ignoriert?
#    <details><summary>Antwort</summary>Ihren Zielen fehlt ein vollständiger Kontext aus zwei
#    Buchstaben; selbst die wahre Quelle sagt sie schlechter als H vorher, und sie mitzuzählen würde
#    verdecken, wie nahe das Modell der Untergrenze kommt.</details>
# 6. Wie hoch wäre der Verlust des untrainierten Modells, wenn seine Vorhersage genau gleichverteilt
#    wäre?
#    <details><summary>Antwort</summary>log V = log 16 ≈ 2,77 nat, die Entropie der
#    Gleichverteilung.</details>
