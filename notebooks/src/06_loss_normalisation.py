# %% [markdown] en
# # 06 · Loss normalisation: gradient accumulation and several processes
#
# A batch that does not fit into memory at once is split into **micro-batches**: each one is run
# forward and backward on its own, the gradients add up in `.grad`, and the optimizer steps once
# (*gradient accumulation*). Data parallelism does the same across processes: every process
# ("rank") computes the gradient of its slice, and the slices' gradients are combined. Both are
# *supposed* to give exactly the gradient of the whole batch. For language models they did not, in
# widely used trainers, until the October 2024 fixes (the problem had been noticed as early as 2021): Hugging Face wrote that "gradient accumulation is
# *supposed* to be mathematically equivalent to full batch training; however, losses did not match
# between training runs where the setting was toggled on and off" (blog post "Fixing Gradient
# Accumulation", after a report by Benjamin Marie that Unsloth analysed).
#
# The cause is one division. In this notebook you
#
# 1. see the pitfall with numbers: two micro-batches with very different numbers of valid target
#    tokens, the mean of their means against the true mean;
# 2. measure what it does to the gradient of a small Transformer;
# 3. derive the fix — divide every part's *sum* by the token count of the *whole* batch — and check
#    that the library's `num_items_in_batch` gives the full-batch loss and gradient;
# 4. see why multi-token prediction needs one count per depth;
# 5. carry the fix over to several processes, where `DistributedDataParallel` averages gradients,
#    and to the metrics;
# 6. train with the library: with and without gradient accumulation, the losses agree; and train
#    with the mean of means, to see what it does to a run and to its log.
#
# Everything runs on a CPU in well under a minute. Every number in the text is printed by a cell or
# checked by an `assert`.
#
# **Goals.** After this notebook you can show with numbers why a mean of micro-batch means is not
# the batch mean, derive the fix (each part's sum divided by the whole batch's count), apply it to the
# per-depth counts of MTP and across processes, and train with it.
# **Prerequisites.** Notebooks 00 and 01 (`ignore_index`, the mean over valid targets); notebook 03
# for section 4.
# **Time.** About 35 minutes of reading for the core path (sections 1–3) and 30 more for the deep
# dives (sections 4–6: multi-token prediction, several processes, training runs with and without
# the fix), plus two exercises; under a minute to run.
# **Builds on.** Notebooks 00, 01 and 03.

# %% [markdown] de
# # 06 · Normierung des Verlusts: Gradientenakkumulation und mehrere Prozesse
#
# Passt ein Batch nicht auf einmal in den Speicher, teilt man ihn in **Micro-Batches** auf: Für jeden
# wird einzeln der Vorwärts- und der Rückwärtsdurchlauf (Forward/Backward Pass) ausgeführt, die
# Gradienten summieren sich in `.grad`, und der Optimierer macht einen einzigen Schritt
# (*Gradientenakkumulation*). Datenparallelität macht dasselbe mit mehreren Prozessen: Jeder Prozess
# („Rank“) berechnet den Gradienten seines Teils, und die Gradienten der Teile werden
# zusammengeführt. Beides *soll* genau den Gradienten des ganzen Batches liefern. Bei Sprachmodellen
# tat es das in verbreiteten Trainern bis zu den Korrekturen vom Oktober 2024 nicht (aufgefallen war
# das Problem schon 2021). Hugging Face schrieb dazu: „gradient accumulation is *supposed* to be
# mathematically equivalent to full batch training; however, losses did not match between training
# runs where the setting was toggled on and off“ (Blogbeitrag „Fixing Gradient Accumulation“, nach
# einer Meldung von Benjamin Marie, die Unsloth analysiert hatte). Auf Deutsch: Gradientenakkumulation
# *soll* mathematisch gleichwertig zum Training mit dem ganzen Batch sein, doch die Verluste von
# Trainingsläufen mit und ohne diese Einstellung stimmten nicht überein.
#
# Die Ursache ist eine einzige Division. In diesem Notebook
#
# 1. sehen wir die Falle an Zahlen: zwei Micro-Batches mit sehr unterschiedlich vielen gültigen
#    Zieltokens, der Mittelwert ihrer Mittelwerte im Vergleich zum wahren Mittelwert;
# 2. messen wir, was sie mit dem Gradienten eines kleinen Transformers macht;
# 3. leiten wir die Korrektur her – die *Summe* jedes Teils durch die Tokenzahl des *ganzen* Batches
#    teilen – und prüfen, dass `num_items_in_batch` aus der Bibliothek Verlust und Gradient des
#    ganzen Batches liefert;
# 4. sehen wir, warum Multi-Token-Prediction eine eigene Zahl pro Vorhersagetiefe braucht;
# 5. übertragen wir die Korrektur auf mehrere Prozesse, über die `DistributedDataParallel` die
#    Gradienten mittelt, und auf die Metriken;
# 6. trainieren wir mit der Bibliothek: Mit und ohne Gradientenakkumulation stimmen die Verluste
#    überein; und wir trainieren mit dem Mittelwert der Mittelwerte, um zu sehen, was er mit einem
#    Lauf und mit dessen Protokoll macht.
#
# Alles läuft auf der CPU in deutlich unter einer Minute. Jede Zahl im Text wird von einer Zelle
# ausgegeben oder durch ein `assert` geprüft.
#
# **Lernziele.** Nach diesem Notebook können Sie mit Zahlen zeigen, warum der Mittelwert der
# Micro-Batch-Mittelwerte nicht der Mittelwert des Batches ist, die Korrektur herleiten (die Summe
# jedes Teils, geteilt durch die Anzahl der Ziele im ganzen Batch), sie auf die getrennten Zahlen
# pro MTP-Tiefe und auf mehrere Prozesse anwenden und damit trainieren.
# **Voraussetzungen.** Notebooks 00 und 01 (`ignore_index`, der Mittelwert über gültige Ziele);
# Notebook 03 für Abschnitt 4.
# **Zeit.** Etwa 35 Minuten Lesezeit für den Kernpfad (Abschnitte 1–3) und 30 weitere für die
# Vertiefungen (Abschnitte 4–6: Multi-Token-Prediction, mehrere Prozesse, Trainingsläufe mit und
# ohne Korrektur), dazu zwei Aufgaben; unter einer Minute Laufzeit.
# **Grundlage.** Notebooks 00, 01 und 03.
# **Sprache.** Abbildungen, Code, Code-Kommentare und Zellausgaben sind in beiden Sprachfassungen
# englisch; der Text erklärt, was sie zeigen.

# %%
import dataclasses
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from aptt_edu.data import get_batch, make_inputs_and_labels, toy_data
from aptt_edu.exercises import check
from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss
from aptt_edu.loss.metrics import PerplexityMetric
from aptt_edu.model import GPT, GPTConfig
from aptt_edu.plotting import moving_average
from aptt_edu.training import (
    TrainConfig,
    build_model,
    build_optimizer,
    evaluate,
    load_data,
    lr_at,
    train,
)

_ = torch.manual_seed(0)
torch.set_num_threads(1)  # one thread: the same float results on any machine


# %% en tags=["language"]
LANG = "en"  # the language of the exercises' feedback (the German notebook sets "de")

# %% de tags=["language"]
LANG = "de"  # die Sprache der Rückmeldungen zu den Aufgaben (das englische Notebook setzt "en")
# %% [markdown] en
# ## 1. The pitfall, with numbers
#
# A batch of four rows of $T = 16$ positions, split into two micro-batches of two rows each. The
# labels follow the library's convention (already shifted; `-100` marks "no target here"). As in
# the toy data of the other notebooks, the first and the last position of every row have no target.
# Micro-batch **A** holds two *short* documents: one target per row, the rest is padding.
# Micro-batch **B** holds two full rows, 14 targets each.
#
# To make the per-token losses easy to check by hand, we do not use a model yet, but logits with a
# known loss: in A the logits are all zero — a uniform prediction, loss $\ln V$ per token — and in
# B they are $4$ at the correct token and $0$ elsewhere, loss $\ln(1 + (V-1)e^{-4})$.
# %% [markdown] de
# ## 1. Die Falle, in Zahlen
#
# Ein Batch aus vier Zeilen mit je $T = 16$ Positionen, aufgeteilt in zwei Micro-Batches zu je zwei
# Zeilen. Die Labels folgen der Konvention der Bibliothek (bereits verschoben; `-100` heißt „hier
# gibt es kein Ziel“). Wie bei der Spielzeugsprache der anderen Notebooks haben die erste und die
# letzte Position jeder Zeile kein Ziel. Micro-Batch **A** enthält zwei *kurze* Dokumente: ein Ziel
# pro Zeile, der Rest ist Padding (Auffüllen). Micro-Batch **B** enthält zwei volle Zeilen mit je 14
# Zielen.
#
# Damit sich die Verluste der einzelnen Tokens von Hand nachprüfen lassen, nehmen wir noch kein
# Modell, sondern Logits mit bekanntem Verlust: In A sind alle Logits null – eine Gleichverteilung,
# Verlust $\ln V$ pro Token –, in B sind sie $4$ beim richtigen Token und sonst $0$, Verlust
# $\ln(1 + (V-1)e^{-4})$.

# %%
V, T = 16, 16
labels = torch.randint(0, V, (4, T))  # (B, T) shifted targets
labels[:, 0] = labels[:, -1] = -100  # first and last position: no target
labels[:2, 2:] = -100  # micro-batch A: short documents, one target per row, then padding
A, B = slice(0, 2), slice(2, 4)  # rows of micro-batch A and B

logits = torch.zeros(4, T, V)  # (B, T, V): A uniform ...
logits[B] = 4.0 * F.one_hot(labels[B].clamp(min=0), V)  # ... B: 4 at the correct token

per_token = LanguageModelingLoss(V, reduction="none")(logits, labels)  # (B, T), 0 where ignored
valid = labels != -100  # (B, T)
N_A, N_B = int(valid[A].sum()), int(valid[B].sum())
S_A, S_B = float(per_token[A].sum()), float(per_token[B].sum())  # summed losses
print(f"micro-batch A: N_A = {N_A:2} valid targets, loss per token {per_token[A][valid[A]][0]:.4f}")
print(f"micro-batch B: N_B = {N_B:2} valid targets, loss per token {per_token[B][valid[B]][0]:.4f}")
assert (N_A, N_B) == (2, 28)
assert torch.allclose(per_token[A][valid[A]], torch.tensor(math.log(V)))
assert torch.allclose(per_token[B][valid[B]], torch.tensor(math.log(1 + (V - 1) * math.exp(-4))))

# %% [markdown] en
# The loss of the whole batch is the mean over **all** of its valid targets, $N = N_A + N_B$:
#
# $$\mathcal{L} = \frac{1}{N}\sum_{i\ \text{valid}} \ell_i = \frac{S_A + S_B}{N_A + N_B},
# \qquad S_m = \sum_{i \in m} \ell_i .$$
#
# The tempting recipe for gradient accumulation computes the usual mean loss of each micro-batch,
# $S_m / N_m$, and divides by the number of micro-batches $M$ so that the gradients add up to "one
# batch's worth". That is the **mean of the means**:
#
# $$\tilde{\mathcal{L}} = \frac{1}{M}\sum_m \frac{S_m}{N_m}.$$
# %% [markdown] de
# Der Verlust des ganzen Batches ist der Mittelwert über **alle** seine gültigen Ziele,
# $N = N_A + N_B$:
#
# $$\mathcal{L} = \frac{1}{N}\sum_{i\ \text{gültig}} \ell_i = \frac{S_A + S_B}{N_A + N_B},
# \qquad S_m = \sum_{i \in m} \ell_i .$$
#
# Das naheliegende Rezept für die Gradientenakkumulation berechnet für jeden Micro-Batch den
# gewohnten mittleren Verlust $S_m / N_m$ und teilt durch die Zahl der Micro-Batches $M$, damit sich
# die Gradienten zu „einem Batch“ aufsummieren. Das ist der **Mittelwert der Mittelwerte**:
#
# $$\tilde{\mathcal{L}} = \frac{1}{M}\sum_m \frac{S_m}{N_m}.$$

# %%
M = 2
N = N_A + N_B
true_mean = (S_A + S_B) / N
mean_of_means = (S_A / N_A + S_B / N_B) / M
print(f"true mean      (S_A + S_B) / N          = {true_mean:.4f}")
print(f"mean of means  (S_A/N_A + S_B/N_B) / M  = {mean_of_means:.4f}   ({mean_of_means / true_mean:.2f}x)")
# the library's ordinary mean over the whole batch is the true mean
assert abs(LanguageModelingLoss(V)(logits, labels).item() - true_mean) < 1e-6
assert mean_of_means > 3 * true_mean

# %% [markdown] en
# The mean of the means is more than three times the true loss. The reason is visible in the weight
# each token gets. Written as a weighted sum $\sum_i w_i \ell_i$, the true mean gives every valid
# token the same weight $1/N$; the mean of the means gives a token of micro-batch $m$ the weight
# $1/(M N_m)$ — a token in a short micro-batch counts for more.
# %% [markdown] de
# Der Mittelwert der Mittelwerte ist mehr als dreimal so groß wie der wahre Verlust. Der Grund zeigt
# sich am Gewicht, das jedes Token bekommt. Als gewichtete Summe $\sum_i w_i \ell_i$ geschrieben,
# gibt der wahre Mittelwert jedem gültigen Token dasselbe Gewicht $1/N$; der Mittelwert der
# Mittelwerte gibt einem Token aus Micro-Batch $m$ das Gewicht $1/(M N_m)$ – ein Token in einem
# kurzen Micro-Batch zählt mehr.

# %%
w_true = torch.where(valid, 1.0 / N, 0.0)  # (B, T)
w_naive = torch.zeros(4, T)
w_naive[A], w_naive[B] = valid[A] / (M * N_A), valid[B] / (M * N_B)
# both are weighted sums of the same per-token losses
assert abs(float((w_true * per_token).sum()) - true_mean) < 1e-6
assert abs(float((w_naive * per_token).sum()) - mean_of_means) < 1e-6
assert abs(float(w_naive.sum()) - 1.0) < 1e-6  # the weights still sum to 1 ...
ratio_A = (1 / (M * N_A)) / (1 / N)  # ... but not equally shared
ratio_B = (1 / (M * N_B)) / (1 / N)
print(f"weight of a token in A: 1/(M N_A) = {1 / (M * N_A):.4f}, {ratio_A:.2f} x its fair share 1/N = {1 / N:.4f}")
print(f"weight of a token in B: 1/(M N_B) = {1 / (M * N_B):.4f}, {ratio_B:.2f} x its fair share")
assert ratio_A == 7.5 and abs(ratio_B - 15 / 28) < 1e-12


# %% [markdown] en
# Each of the two tokens of A weighs 7.5 times its fair share; each of the 28 tokens of B a little
# more than half of it. Only when all micro-batches have the same count, $N_m = N / M$, is
# $1/(M N_m) = 1/N$, and then both recipes agree. With padding and documents of different lengths
# the counts rarely agree. Packing documents into full rows of fixed length makes them nearly
# equal, unless the targets at document boundaries are masked: then each row loses as many targets
# as it holds boundaries, and the counts differ again.
# %% [markdown] de
# Jedes der beiden Tokens aus A wiegt 7,5-mal so viel, wie ihm zusteht; jedes der 28 Tokens aus B
# etwas mehr als die Hälfte dessen, was ihm zusteht. Nur wenn alle Micro-Batches gleich viele Ziele
# haben, $N_m = N / M$, ist $1/(M N_m) = 1/N$, und nur dann stimmen beide Rezepte überein. Mit
# Padding und unterschiedlich langen Dokumenten sind diese Zahlen selten gleich. Packt man die
# Dokumente in volle Zeilen fester Länge (Packing), werden die Zahlen fast gleich – es sei denn, die Ziele
# an den Dokumentgrenzen werden maskiert: Dann verliert jede Zeile so viele Ziele, wie sie Grenzen
# enthält, und die Zahlen unterscheiden sich wieder.

# %% [markdown] en
# ## 2. What the wrong weights do to the gradient
#
# The loss value is only what the log shows. What trains the model is the gradient, and it is a
# weighted sum of the per-token gradients with the same weights: $\nabla\mathcal{L} = \sum_i w_i
# \nabla \ell_i$. We take the library's tiny Transformer (`aptt_edu.model.GPT`), four rows of the
# toy language from `aptt_edu.data` with the same padding pattern as above, and compare the
# gradient of all of the model's parameters in two ways:
#
# * **full batch** — one forward and backward pass over all four rows;
# * **mean of means** — micro-batch A, then micro-batch B, each with its own mean loss
#   $S_m / N_m$ divided by $M$; `backward()` adds the gradients up in `.grad`, as gradient
#   accumulation does.
# %% [markdown] de
# ## 2. Was die falschen Gewichte mit dem Gradienten machen
#
# Der Wert des Verlusts ist nur das, was in der Log-Ausgabe steht. Trainiert wird das Modell vom
# Gradienten, und der ist eine gewichtete Summe der Gradienten der einzelnen Tokens, mit denselben
# Gewichten: $\nabla\mathcal{L} = \sum_i w_i \nabla \ell_i$. Wir nehmen den winzigen Transformer der
# Bibliothek (`aptt_edu.model.GPT`), vier Zeilen der Spielzeugsprache aus `aptt_edu.data` mit
# demselben Padding-Muster wie oben und vergleichen den Gradienten nach allen Parametern des Modells,
# auf zwei Arten berechnet:
#
# * **ganzer Batch** (`full batch`) – ein Vorwärts- und ein Rückwärtsdurchlauf über alle vier
#   Zeilen;
# * **Mittelwert der Mittelwerte** (`mean of means`) – erst Micro-Batch A, dann Micro-Batch B,
#   jeder mit seinem eigenen mittleren Verlust $S_m / N_m$, geteilt durch $M$; `backward()` summiert
#   die Gradienten in `.grad` auf, so wie es die Gradientenakkumulation tut.

# %%
data = toy_data(seq_len=T, n_train=64, n_val=16, vocab_size=V, seed=0)
inputs, toy_labels = make_inputs_and_labels(data.train[:4], data.context_warmup)  # (4, T), (4, T)
torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, d_model=32))
ce = LanguageModelingLoss(V)  # the ordinary mean over this call's valid targets


def padded(k: int) -> torch.Tensor:
    """The toy labels, with only the first k targets of each row of micro-batch A kept."""
    lab = toy_labels.clone()
    lab[A, 1 + k :] = -100  # position 0 has no target (context warm-up), targets 1..k stay
    return lab


def accumulated_grad(losses) -> torch.Tensor:
    """Calls each loss function and its backward() in turn; returns every parameter's .grad, flat."""
    model.zero_grad()
    for loss in losses:
        loss().backward()  # gradients add up in .grad
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def rel_error(g: torch.Tensor, ref: torch.Tensor) -> float:
    return float((g - ref).norm() / ref.norm())


lab = padded(1)
valid_per_row = (lab != -100).sum(dim=1).tolist()
print("valid targets per row:", valid_per_row)
assert valid_per_row == [1, 1, 14, 14]
g_full = accumulated_grad([lambda: ce(model(inputs)[0], lab)])
g_naive = accumulated_grad([lambda m=m: ce(model(inputs[m])[0], lab[m]) / M for m in (A, B)])
cosine = float(F.cosine_similarity(g_naive, g_full, dim=0))
print(f"mean of means vs full batch: relative error {rel_error(g_naive, g_full):.2f}, cosine {cosine:.2f}")
assert rel_error(g_naive, g_full) > 1.0 and cosine < 0.5

# %% [markdown] en
# The accumulated gradient is not a slightly noisy version of the full-batch gradient: its error is
# larger than the gradient itself, and it points in a clearly different direction. How large the
# error is depends on how unequal the counts are. We let micro-batch A keep $k = 1, \dots, 14$
# targets per row ($N_A = 2k$) while B keeps its 28:
# %% [markdown] de
# Der akkumulierte Gradient ist keine leicht verrauschte Fassung des Gradienten des ganzen Batches:
# Sein Fehler ist größer als der Gradient selbst, und der akkumulierte Gradient zeigt in eine
# deutlich andere Richtung. Wie groß der Fehler ist, hängt davon ab, wie ungleich die Zahlen der Ziele sind. Wir
# lassen Micro-Batch A $k = 1, \dots, 14$ Ziele pro Zeile behalten ($N_A = 2k$), B behält seine 28:

# %%
sweep_N_A, sweep_error = [], []
for k in range(1, 15):
    lab_k = padded(k)
    g_full_k = accumulated_grad([lambda: ce(model(inputs)[0], lab_k)])
    g_naive_k = accumulated_grad([lambda m=m: ce(model(inputs[m])[0], lab_k[m]) / M for m in (A, B)])
    sweep_N_A.append(int((lab_k[A] != -100).sum()))
    sweep_error.append(rel_error(g_naive_k, g_full_k))
for n_a, err in zip(sweep_N_A, sweep_error, strict=True):
    if n_a in (2, 8, 14, 20, 26, 28):
        print(f"N_A = {n_a:2}, N_B = 28: relative gradient error {err:.3f}")
assert sweep_error[0] > 1.0 and sweep_error[-1] < 1e-5  # equal counts (28 = 28): no error

fig, (ax_w, ax_e) = plt.subplots(1, 2, figsize=(11, 3.8))
x = torch.arange(2)
ax_w.bar(x - 0.2, [1 / N, 1 / N], width=0.4, label="true mean: 1/N")
ax_w.bar(x + 0.2, [1 / (M * N_A), 1 / (M * N_B)], width=0.4, label="mean of means: 1/(M·N_m)")
ax_w.set_xticks(x, [f"a token of A (N_A = {N_A})", f"a token of B (N_B = {N_B})"])
ax_w.set_ylabel("weight of the token's loss")
ax_w.set_title("section 1: weight per token")
ax_w.legend()
ax_e.plot(sweep_N_A, sweep_error, "o-")
ax_e.axvline(28, color="grey", ls=":")
ax_e.set_xlabel("valid targets in micro-batch A, N_A (B has N_B = 28)")
ax_e.set_ylabel("‖g_naive − g_full‖ / ‖g_full‖")
ax_e.set_title("section 2: gradient error of the mean of means")
fig.tight_layout()
plt.show()

# %% [markdown] en
# *Figure:* left, the weight of one token's loss in the true mean ($1/N$) and in the mean of means
# ($1/(M N_m)$), for a token of A and one of B; right, the relative error of the mean-of-means
# gradient against $N_A$, which is zero only at $N_A = N_B = 28$ (dotted).
# %% [markdown] de
# *Abbildung:* links („section 1: weight per token“) das Gewicht des Verlusts eines Tokens aus A und
# eines aus B: beim wahren Mittelwert (`true mean`) $1/N$, beim Mittelwert der Mittelwerte
# (`mean of means`) $1/(M N_m)$; rechts („section 2: gradient error of the mean of means“), über
# $N_A$ aufgetragen, der relative Fehler des Gradienten beim Mittelwert der Mittelwerte; er
# verschwindet nur bei $N_A = N_B = 28$ (gepunktete Linie).

# %% [markdown] en
# The error vanishes only at $N_A = N_B$. (The labels in the figure are English in both notebooks;
# the code cells are identical in both languages.)
# %% [markdown] de
# Der Fehler verschwindet nur bei $N_A = N_B$.

# %% [markdown] en
# **Try it.** Two micro-batches with $N_A$ and $N_B$ valid targets: how much does one token of each
# weigh in the mean of means, against its fair share $1/N$? In a live notebook (Jupyter, Colab) the sliders below redraw the figure; on the docs site and under
# the notebook tests it is drawn once, with the defaults (`aptt_edu.widgets.explore`).
# %% [markdown] de
# **Probieren Sie es aus.** Zwei Micro-Batches mit $N_A$ und $N_B$ gültigen Zielen: Wie viel wiegt
# ein Token jedes Micro-Batches im Mittelwert der Mittelwerte, gemessen an seinem fairen Anteil
# $1/N$? In einem laufenden Notebook (Jupyter, Colab) zeichnen die Schieberegler unten die
# Abbildung neu; auf der Website und in den Notebook-Tests wird sie einmal mit den Voreinstellungen
# gezeichnet (`aptt_edu.widgets.explore`). Die Balken entsprechen denen der linken Abbildung oben;
# im Titel steht, wie viel ein Token aus A und eines aus B wiegen, gemessen an ihrem fairen Anteil
# („its fair share“).

# %%
from aptt_edu.widgets import explore


def draw_weights(N_A: int, N_B: int) -> None:
    fair = 1 / (N_A + N_B)  # the true mean weighs every token alike
    naive = [1 / (2 * N_A), 1 / (2 * N_B)]  # mean of the two means: 1 / (M N_m), M = 2
    _, ax = plt.subplots(figsize=(7, 3.4))
    x = torch.arange(2)
    ax.bar(x - 0.2, [fair, fair], width=0.4, label="true mean: 1/N")
    ax.bar(x + 0.2, naive, width=0.4, label="mean of means: 1/(M·N_m)")
    ax.set_xticks(x, [f"a token of A (N_A = {N_A})", f"a token of B (N_B = {N_B})"])
    ax.set_ylabel("weight of the token's loss")
    ax.set_title(f"a token of A weighs {naive[0] / fair:.2f}x, of B {naive[1] / fair:.2f}x its fair share")
    ax.legend()
    plt.show()


explore(draw_weights, N_A=(1, 64, 1, 2), N_B=(1, 64, 1, 28))

# %% [markdown] en
# *Figure:* the weight of a token of A and of B in the true mean and in the mean of means, for the
# $N_A$ and $N_B$ of the sliders (drawn with 2 and 28 where nothing runs live); the title gives each
# as a multiple of its fair share.
# %% [markdown] de
# *Abbildung:* das Gewicht eines Tokens aus A und eines aus B im wahren Mittelwert und im Mittelwert
# der Mittelwerte, für die mit den Schiebereglern eingestellten Werte von $N_A$ und $N_B$ (auf der
# Website und in den Notebook-Tests mit den Voreinstellungen 2 und 28 gezeichnet); der Titel gibt
# beide als Vielfaches ihres fairen Anteils an.

# %% [markdown] en
# ## 3. The fix: divide every part by the count of the whole batch
#
# Split the full-batch loss along the micro-batches *before* dividing:
#
# $$\mathcal{L} = \frac{1}{N}\sum_{i\ \text{valid}} \ell_i
# = \frac{1}{N}\sum_m S_m = \sum_m \frac{S_m}{N}.$$
#
# So micro-batch $m$ contributes $S_m / N$: its **summed** loss divided by the valid-target count of
# the **whole** batch. The gradient is linear, so the accumulated gradients are $\sum_m \nabla S_m /
# N = \nabla \mathcal{L}$ exactly — whatever the counts are. $N$ must be known before the first
# micro-batch runs backward, and it is: counting labels that are not `-100` needs no forward pass,
# only the labels of all micro-batches. This is the fix of the transformers library (pull
# requests #34191 and #34198, October 2024; #34283 passes the count into the loss of most models):
# the trainer counts the targets of all micro-batches of a step and hands the count to the loss as
# `num_items_in_batch`.
#
# The library's `LanguageModelingLoss` takes the same argument.
# %% [markdown] de
# ## 3. Die Korrektur: jeden Teil durch die Anzahl der Ziele im ganzen Batch teilen
#
# Wir zerlegen den Verlust des ganzen Batches nach Micro-Batches, *bevor* wir teilen:
#
# $$\mathcal{L} = \frac{1}{N}\sum_{i\ \text{gültig}} \ell_i
# = \frac{1}{N}\sum_m S_m = \sum_m \frac{S_m}{N}.$$
#
# Micro-Batch $m$ trägt also $S_m / N$ bei: seinen **summierten** Verlust, geteilt durch die Zahl
# der gültigen Ziele des **ganzen** Batches. Der Gradient ist linear, also ergeben die aufsummierten
# Gradienten genau $\sum_m \nabla S_m / N = \nabla \mathcal{L}$ – ganz gleich, wie sich die Ziele
# auf die Micro-Batches verteilen. $N$ muss bekannt sein, bevor für den ersten Micro-Batch der
# Rückwärtsdurchlauf läuft, und das ist der Fall: Um die Labels zu zählen, die nicht `-100` sind,
# braucht man keinen Vorwärtsdurchlauf, nur die Labels aller Micro-Batches. So sieht die Korrektur
# in der transformers-Bibliothek aus (Pull-Requests #34191 und #34198, Oktober 2024; #34283 reicht
# die Zahl an den Verlust der meisten Modelle weiter): Der Trainer zählt die Ziele aller
# Micro-Batches eines Schritts und übergibt diese Zahl als `num_items_in_batch` an die
# Verlustfunktion.
#
# `LanguageModelingLoss` aus der Bibliothek akzeptiert dasselbe Argument.

# %% [markdown] en
# ### Exercise: the count of the whole step
#
# Write `my_num_items_in_batch(micro_labels)`: for the labels of all micro-batches of one
# optimizer step (a list of `(b, T)` tensors, `-100` for "no target") the number of valid targets
# of the whole step, an `int` — the count each micro-batch's sum is divided by. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Die Zahl der Ziele im ganzen Schritt
#
# Schreiben Sie `my_num_items_in_batch(micro_labels)`: für die Labels aller Micro-Batches eines
# Optimiererschritts (eine Liste von `(b, T)`-Tensoren, `-100` für „kein Ziel“) die Zahl der gültigen
# Ziele des ganzen Schritts, ein `int` – die Zahl, durch die die Summe jedes Micro-Batches geteilt
# wird. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren
# Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die
# Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_num_items_in_batch(micro_labels):
    """A list of (b, T) label tensors -> the number of labels != -100 in all of them together."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_num_items_in_batch(micro_labels):
    return sum(int((y != -100).sum()) for y in micro_labels)  # counted before any backward pass

# %%
result = check("num_items_in_batch", my_num_items_in_batch, lang=LANG)

# %% [markdown] en
# ### Exercise: losses to accumulate
#
# Write `my_accumulated_losses(micro_logits, micro_labels)`: for micro-batches of logits
# `(b, T, V)` and labels `(b, T)`, the list of losses to call `backward()` on, one per micro-batch,
# such that the summed gradients equal the gradient of the *whole* batch's mean loss. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Verluste zum Akkumulieren
#
# Schreiben Sie `my_accumulated_losses(micro_logits, micro_labels)`: für Micro-Batches aus Logits
# `(b, T, V)` und Labels `(b, T)` die Liste der Verluste, für die `backward()` aufgerufen wird, einer
# pro Micro-Batch, sodass die summierten Gradienten gleich dem Gradienten des mittleren Verlusts des
# *ganzen* Batches sind. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus: Sie
# testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht
# stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_accumulated_losses(micro_logits, micro_labels):
    """Micro-batches of (b, T, V) logits and (b, T) labels -> one 0-dim loss per micro-batch."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_accumulated_losses(micro_logits, micro_labels):
    n = sum(int((y != -100).sum()) for y in micro_labels)  # the whole batch's count
    V = micro_logits[0].shape[-1]
    return [  # each micro-batch's *sum*, divided by the count of the whole batch
        F.cross_entropy(z.reshape(-1, V), y.reshape(-1), reduction="sum") / n
        for z, y in zip(micro_logits, micro_labels, strict=True)
    ]

# %%
result = check("accumulated_loss", my_accumulated_losses, lang=LANG)

# %% [markdown] en
# Now the same with the library, on micro-batches A and B: every part is $S_m / N$
# (`num_items_in_batch=N`), and the parts add up to the full-batch loss.
# %% [markdown] de
# Nun dasselbe mit der Bibliothek, für die Micro-Batches A und B: Jeder Teil ist $S_m / N$
# (`num_items_in_batch=N`), und die Teile ergeben zusammen den Verlust des ganzen Batches.

# %%
lab = padded(1)
N = int((lab != -100).sum())  # counted from the labels of the whole batch: no forward pass needed

with torch.no_grad():  # values only; the gradients follow below
    parts = [ce(model(inputs[m])[0], lab[m], num_items_in_batch=N) for m in (A, B)]  # S_m / N
    full = ce(model(inputs)[0], lab)
print(f"full batch {float(full):.6f}   sum of parts {float(sum(parts)):.6f}")
assert abs(float(sum(parts)) - float(full)) < 1e-6

g_full = accumulated_grad([lambda: ce(model(inputs)[0], lab)])
g_fixed = accumulated_grad(
    [lambda m=m: ce(model(inputs[m])[0], lab[m], num_items_in_batch=N) for m in (A, B)]
)
g_naive = accumulated_grad([lambda m=m: ce(model(inputs[m])[0], lab[m]) / M for m in (A, B)])
print(f"with the fix:    max |g_fixed - g_full| < 1e-6: {float((g_fixed - g_full).abs().max()) < 1e-6}")
print(f"mean of means:   max |g_naive - g_full| = {float((g_naive - g_full).abs().max()):.2f}")
assert torch.allclose(g_fixed, g_full, rtol=0, atol=1e-6)  # equal with the fix ...
assert not torch.allclose(g_naive, g_full, rtol=0, atol=1e-3)  # ... unequal without it

# %% [markdown] en
# With the fix, the accumulated gradient equals the full-batch gradient to float rounding; without
# it, it does not. Note that the per-micro-batch values `parts` are no longer "losses" one would
# print: they are shares of one loss and only their sum means something.
#
# ## 4. Multi-token prediction: one count per depth
#
# `MultiTokenPredictionLoss` adds the losses of $D$ extra depths (notebook 03): depth $k$ is scored
# on `labels[:, k:]`, which has $k$ positions fewer per row *and different padding*. Each term is a
# mean over its own targets, so each term needs the count of *its* targets in the whole batch,
# $N_0$ (main), $N_1, \dots, N_D$. `count_items` returns them.
# %% [markdown] de
# Mit der Korrektur stimmt der akkumulierte Gradient bis auf Rundungsfehler mit dem des ganzen
# Batches überein, ohne sie nicht. Die Werte der einzelnen Micro-Batches in `parts` sind dabei keine
# „Verluste“ mehr, die man ausgeben würde: Sie sind Anteile eines Verlusts, und nur ihre Summe hat
# eine Bedeutung.
#
# ## 4. Multi-Token-Prediction: eine Zahl pro Vorhersagetiefe
#
# `MultiTokenPredictionLoss` addiert die Verluste von $D$ zusätzlichen Vorhersagetiefen (Notebook
# 03): Tiefe $k$ wird an `labels[:, k:]` gemessen, das pro Zeile $k$ Positionen weniger *und ein
# anderes Padding* hat. Jeder Term ist ein Mittelwert über seine eigenen Ziele, also braucht jeder
# Term die Zahl *seiner* Ziele im ganzen Batch: $N_0$ (Haupt-Head), $N_1, \dots, N_D$. `count_items`
# liefert sie.

# %%
D = 2
mtp_loss = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=0.3)
counts = mtp_loss.count_items(lab)  # (D+1,): N_0, N_1, N_2 of the whole batch
for name, rows in (("A", A), ("B", B), ("whole batch", slice(0, 4))):
    print(f"{name:12} N_0, N_1, N_2 = {mtp_loss.count_items(lab[rows]).tolist()}")
assert counts.tolist() == [30, 30, 26]
assert mtp_loss.count_items(lab[A]).tolist() == [2, 2, 0]  # A's only target is not a depth-2 target
assert (mtp_loss.count_items(lab[A]) + mtp_loss.count_items(lab[B])).tolist() == counts.tolist()

# %% [markdown] en
# The counts differ per depth (30, 30, 26 — depth 1 loses only position 0, which has no target
# anyway), and micro-batch A has no depth-2 target at all. One number for all terms would divide
# the depth-2 sum by 30 instead of 26. So `num_items_in_batch` of
# `MultiTokenPredictionLoss` takes the $D + 1$ counts; a single number is refused when MTP logits
# are present. With the counts, the parts add up term by term, and so do the gradients — here for
# the library's model with the simple MTP head:
# %% [markdown] de
# Die Zahlen unterscheiden sich je Tiefe (30, 30, 26 – Tiefe 1 verliert nur Position 0, die ohnehin
# kein Ziel hat), und Micro-Batch A hat überhaupt kein Ziel für Tiefe 2. Eine einzige Zahl für alle
# Terme würde die Summe von Tiefe 2 durch 30 statt durch 26 teilen. Deshalb erwartet
# `num_items_in_batch` von `MultiTokenPredictionLoss` die $D + 1$ Zahlen; eine einzelne Zahl wird
# abgelehnt, sobald MTP-Logits dabei sind. Mit diesen Zahlen summieren sich die Teile Term für Term
# zum Ganzen, und ebenso die Gradienten – hier für das Modell der Bibliothek mit dem einfachen
# MTP-Head:

# %%
torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, d_model=32, mtp="simple", mtp_depth=D))
g_full = accumulated_grad([lambda: mtp_loss(*model(inputs), lab)[0]])
g_fixed = accumulated_grad(
    [lambda m=m: mtp_loss(*model(inputs[m]), lab[m], num_items_in_batch=counts)[0] for m in (A, B)]
)
with torch.no_grad():
    full_terms = mtp_loss(*model(inputs), lab)[1]
    part_terms = [mtp_loss(*model(inputs[m]), lab[m], num_items_in_batch=counts)[1] for m in (A, B)]
for name in full_terms:
    summed = sum(float(t[name]) for t in part_terms)
    print(f"{name:12} full batch {float(full_terms[name]):.6f}   sum of parts {summed:.6f}")
    assert abs(summed - float(full_terms[name])) < 1e-6
assert torch.allclose(g_fixed, g_full, rtol=0, atol=1e-6)
try:
    mtp_loss(*model(inputs[A]), lab[A], num_items_in_batch=N)
except ValueError as e:
    print("ValueError:", e)

# %% [markdown] en
# ## 5. Several processes: `DistributedDataParallel` averages
#
# With data parallelism, $W$ processes ("ranks") each take a slice of the global batch: rank $r$
# computes the gradient $g_r$ of its loss, and `DistributedDataParallel` (DDP) combines the ranks'
# gradients during `backward()` with an all-reduce that **averages**: every rank ends up with
# $\frac{1}{W}\sum_r g_r$. The target is still $\nabla\mathcal{L} = \sum_r \nabla S_r / N$. So rank
# $r$ must use the loss
#
# $$\mathcal{L}_r = W \cdot \frac{S_r}{N}
# \quad\Rightarrow\quad \frac{1}{W}\sum_r \nabla \mathcal{L}_r = \sum_r \frac{\nabla S_r}{N}
# = \nabla\mathcal{L},$$
#
# with $N$ the count of the **global** batch. Each rank knows $N$ without communication if all ranks
# draw the same global batch (same seed) and then take their slices, as `aptt_edu.training` does;
# otherwise the ranks all-reduce their local counts, which add up. With gradient accumulation on top,
# each micro-batch of each rank uses $W \cdot S_{r,m} / N$.
#
# We check the algebra in this one process: two "ranks", rank 0 with micro-batch A and rank 1 with
# B, and the average that DDP would form.
# %% [markdown] de
# ## 5. Mehrere Prozesse: `DistributedDataParallel` mittelt
#
# Bei Datenparallelität nehmen $W$ Prozesse („Ranks“) je einen Teil des globalen Batches: Rank $r$
# berechnet den Gradienten $g_r$ seines Verlusts, und `DistributedDataParallel` (DDP) führt die
# Gradienten der Ranks während `backward()` mit einem All-Reduce zusammen, das **mittelt**: Jeder
# Rank erhält $\frac{1}{W}\sum_r g_r$. Das Ziel ist weiterhin
# $\nabla\mathcal{L} = \sum_r \nabla S_r / N$. Also muss Rank $r$ den Verlust
#
# $$\mathcal{L}_r = W \cdot \frac{S_r}{N}
# \quad\Rightarrow\quad \frac{1}{W}\sum_r \nabla \mathcal{L}_r = \sum_r \frac{\nabla S_r}{N}
# = \nabla\mathcal{L}$$
#
# verwenden, wobei $N$ die Zahl der Ziele im **globalen** Batch ist. Jeder Rank kennt $N$ ohne
# Kommunikation, wenn alle Ranks denselben globalen Batch ziehen (gleicher Seed) und erst dann ihren
# Teil nehmen, so wie `aptt_edu.training` es macht; sonst summieren die Ranks ihre lokalen Zahlen mit
# einem All-Reduce. Kommt Gradientenakkumulation hinzu, verwendet jeder Micro-Batch jedes Ranks
# $W \cdot S_{r,m} / N$.
#
# Wir prüfen die Algebra in diesem einen Prozess: zwei „Ranks“, Rank 0 mit Micro-Batch A und Rank 1
# mit B, und der Mittelwert, den DDP bilden würde.

# %%
W = 2
ranks = (A, B)  # the rows of rank 0 and rank 1
torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, d_model=32))
g_full = accumulated_grad([lambda: ce(model(inputs)[0], lab)])


def ddp_average(loss_of_rank) -> torch.Tensor:
    """Each rank's gradient on its own, then the average that DDP's all-reduce forms."""
    return sum(accumulated_grad([lambda r=r: loss_of_rank(r)]) for r in ranks) / W


g_ddp = ddp_average(lambda r: W * ce(model(inputs[r])[0], lab[r], num_items_in_batch=N))
g_ddp_no_w = ddp_average(lambda r: ce(model(inputs[r])[0], lab[r], num_items_in_batch=N))
g_ddp_local_mean = ddp_average(lambda r: ce(model(inputs[r])[0], lab[r]))
print(f"W * S_r / N         : max |g - g_full| < 1e-6: {float((g_ddp - g_full).abs().max()) < 1e-6}")
print(f"S_r / N (no W)      : g = g_full / {float(g_full.norm() / g_ddp_no_w.norm()):.3f}")
print(f"S_r / N_r (own mean): relative error {rel_error(g_ddp_local_mean, g_full):.2f}")
assert torch.allclose(g_ddp, g_full, rtol=0, atol=1e-6)
assert torch.allclose(g_ddp_no_w * W, g_full, rtol=0, atol=1e-6)  # forgetting W: a W-times smaller step
assert rel_error(g_ddp_local_mean, g_full) > 1.0  # each rank's own mean: the bug again

# %% [markdown] en
# Forgetting the factor $W$ only scales the gradient (AdamW would hide most of that, SGD would not);
# each rank's own mean is the mean-of-means bug again, now across processes.
#
# ### Metrics across processes: sums, not means
#
# The same rule holds for evaluation. The perplexity of a validation set split over ranks is
# $\exp(\sum \mathrm{NLL} / \sum N)$ over all ranks, not the mean of the ranks' perplexities.
# `PerplexityMetric` and `TokenAccuracyMetric` therefore keep *sums* (`nll_sum`, `token_count`), and
# `compute()` adds them up over all ranks with `torch.distributed.all_reduce` when a process group
# is initialised; every rank then returns the global value. Here the two "ranks" are two metric
# objects, and the all-reduce is an addition:
# %% [markdown] de
# Wer den Faktor $W$ vergisst, skaliert nur den Gradienten (AdamW würde das größtenteils verdecken,
# SGD nicht); der eigene Mittelwert jedes Ranks ist wieder der Fehler mit dem Mittelwert der
# Mittelwerte, jetzt über Prozesse hinweg.
#
# ### Metriken über mehrere Prozesse: Summen, nicht Mittelwerte
#
# Dieselbe Regel gilt bei der Auswertung. Die Perplexität von Validierungsdaten, die auf die Ranks
# verteilt sind, ist $\exp(\sum \mathrm{NLL} / \sum N)$ über alle Ranks, nicht der Mittelwert der
# Perplexitäten der Ranks. `PerplexityMetric` und `TokenAccuracyMetric` speichern deshalb *Summen*
# (`nll_sum`, `token_count`), und `compute()` addiert sie mit `torch.distributed.all_reduce` über
# alle Ranks, sobald eine Prozessgruppe initialisiert ist; dann liefert jeder Rank den globalen Wert.
# Hier sind die beiden „Ranks“ zwei Metrik-Objekte, und das All-Reduce ist eine Addition:

# %%
model.eval()
with torch.no_grad():
    per_rank = [PerplexityMetric() for _ in ranks]
    for metric, r in zip(per_rank, ranks, strict=True):
        metric.update(model(inputs[r])[0], lab[r])
    everything = PerplexityMetric()
    everything.update(model(inputs)[0], lab)
# what all_reduce(SUM) of the buffers gives every rank
nll_sum = sum(m.nll_sum for m in per_rank)
token_count = sum(m.token_count for m in per_rank)
global_ppl = float(torch.exp(nll_sum / token_count))
mean_of_ppls = sum(float(m.compute()) for m in per_rank) / W
print(f"perplexity from the summed buffers {global_ppl:.4f}   one process, all rows {float(everything.compute()):.4f}")
print(f"mean of the ranks' perplexities    {mean_of_ppls:.4f}")
assert abs(global_ppl - float(everything.compute())) < 1e-9
assert abs(mean_of_ppls - global_ppl) > 0.1

# %% [markdown] en
# `tests/test_distributed.py` runs this with two real processes on the `gloo` backend and checks that
# both ranks' `compute()` equals the one-process value.
#
# ## 6. Training with the library
#
# `aptt_edu.training` applies all of this. `TrainConfig.grad_accum` (command line `--grad-accum`)
# splits each global batch of `batch_size` rows into that many micro-batches; every micro-batch's
# loss is its sum divided by the global counts from `count_items`, per term. Under `torchrun` the
# same loop runs in every process with DDP, each rank on its slice of the global batch, with the
# factor $W$ from section 5 and `no_sync()` for all but the last micro-batch, so the gradients are
# all-reduced once per step:
#
# ```
# torchrun --nproc_per_node 2 -m aptt_edu --batch-size 48 --grad-accum 2 --out runs/ddp
# ```
#
# The logged training loss is the mean over the global batch. Below, 10 rows per step are split
# into micro-batches of 4, 3 and 3 rows — 56, 42 and 42 main targets, unequal counts — with the
# simple MTP head at depth 2. With the fix, the training curve is the one of the full batch:
# %% [markdown] de
# `tests/test_distributed.py` führt das mit zwei echten Prozessen und dem `gloo`-Backend aus und
# prüft, dass `compute()` auf beiden Ranks den Wert eines einzelnen Prozesses liefert.
#
# ## 6. Training mit der Bibliothek
#
# `aptt_edu.training` setzt all das um. `TrainConfig.grad_accum` (auf der Kommandozeile
# `--grad-accum`) teilt jeden globalen Batch aus `batch_size` Zeilen in entsprechend viele
# Micro-Batches auf; der Verlust jedes Micro-Batches ist seine Summe, geteilt durch die globalen
# Zahlen aus `count_items`, Term für Term. Unter `torchrun` läuft dieselbe Schleife in jedem Prozess
# mit DDP, jeder Rank auf seinem Teil des globalen Batches, mit dem Faktor $W$ aus Abschnitt 5 und
# `no_sync()` für alle Micro-Batches außer dem letzten, sodass die Gradienten einmal pro Schritt per
# All-Reduce zusammengeführt werden:
#
# ```
# torchrun --nproc_per_node 2 -m aptt_edu --batch-size 48 --grad-accum 2 --out runs/ddp
# ```
#
# Der protokollierte Trainingsverlust ist der Mittelwert über den globalen Batch. Unten werden
# 10 Zeilen pro Schritt in Micro-Batches aus 4, 3 und 3 Zeilen geteilt – 56, 42 und 42 Ziele des
# Haupt-Heads, also ungleiche Zahlen –, mit dem einfachen MTP-Head der Tiefe 2. Mit der Korrektur
# ist die Trainingskurve die des ganzen Batches:

# %% tags=["nbval-ignore-output"]
base = TrainConfig(
    seq_len=T, toy_vocab_size=V, n_train_rows=512, n_val_rows=64, d_model=32,
    mtp="simple", mtp_depth=2, steps=60, warmup_steps=10, batch_size=10, eval_every=20,
    progress=False,
)  # fmt: skip
rows_per_micro_batch = [len(rows) for rows in torch.arange(base.batch_size).tensor_split(3)]
print("rows per micro-batch:", rows_per_micro_batch)
assert rows_per_micro_batch == [4, 3, 3]
runs = {a: train(dataclasses.replace(base, grad_accum=a)) for a in (1, 3)}
for a, h in runs.items():
    print(f"grad_accum = {a}: train loss step 1 {h.train_loss[0]:.4f}, step {h.step[-1]} "
          f"{h.train_loss[-1]:.4f}; val loss {h.val_loss[-1]:.4f}")
diff_train = max(abs(x - y) for x, y in zip(runs[1].train_loss, runs[3].train_loss, strict=True))
diff_val = max(abs(x - y) for x, y in zip(runs[1].val_loss, runs[3].val_loss, strict=True))
print(f"max |difference| over {base.steps} steps: train loss < 1e-5: {diff_train < 1e-5}, "
      f"val loss < 1e-5: {diff_val < 1e-5}")
assert diff_train < 1e-5 and diff_val < 1e-5

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
for a, h in runs.items():
    style = dict(ls="-", lw=3, alpha=0.5) if a == 1 else dict(ls="--", lw=1.5)
    ax.plot(h.step, h.train_loss, color="C0", label=f"training objective (main + MTP), grad_accum = {a}", **style)
    ax.plot(h.val_step, h.val_loss, "o" if a == 1 else "x", color="C1", ms=9 if a == 1 else 6,
            label=f"validation loss (main head), grad_accum = {a}")
ax.set_xlabel("step")
ax.set_ylabel("loss (nats/token)")
ax.set_title("full batch vs three unequal micro-batches: the same run")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown] en
# *Figure:* the training objective (main head plus MTP, blue) and the validation loss of the main
# head (orange), for the run on the full batch (`grad_accum = 1`: thick pale line, circles) and the
# run on three unequal micro-batches (`grad_accum = 3`: dashed line, crosses).
# %% [markdown] de
# *Abbildung:* die Zielfunktion des Trainings (Haupt-Head plus MTP, `training objective`, blau) und
# der Validierungsverlust des Haupt-Heads (`validation loss`, orange) für den Lauf mit dem ganzen
# Batch (`grad_accum = 1`: dicke, blasse Linie und Kreise) und den Lauf mit drei ungleichen
# Micro-Batches (`grad_accum = 3`: gestrichelte Linie und Kreuze). Der Titel („full batch vs three
# unequal micro-batches: the same run“) besagt: ganzer Batch und drei ungleiche Micro-Batches
# ergeben denselben Lauf.

# %% [markdown] en
# The two curves lie on top of each other. `tests/test_distributed.py` launches the command above
# with two processes on the loopback interface and checks that the losses in `history.json`, the
# gradient norms and the validation metrics on both ranks equal a one-process run on the same global
# batch.
#
# ### And the mean of means?
#
# The library has no switch for the pitfall, so the loop below writes the step out by hand. It is
# `train_step` without MTP and without DDP: count $N$, back-propagate each micro-batch's share,
# clip, step. To give the pitfall something to act on, every row is cut after a random length
# (2 to 14 targets, padding after that) and the 24 rows of a step are sorted by length before they
# are split into $M = 3$ micro-batches, as a length-grouped sampler would do: the first micro-batch
# holds the short documents, the last the long ones. Three recipes, each with three seeds, see the
# same batches:
#
# * **full batch**: one forward and backward pass over all 24 rows, loss $S / N$;
# * **the fix**: three micro-batches, each back-propagating $S_m / N$;
# * **mean of means**: three micro-batches, each back-propagating $S_m / (M N_m)$.
#
# Each run logs the loss it back-propagates, summed over the micro-batches: the number a training
# log would show. For the mean of means we also keep the true mean $S / N$ of the same batch.
# %% [markdown] de
# Die beiden Kurven liegen übereinander. `tests/test_distributed.py` startet den Befehl oben mit
# zwei Prozessen über die Loopback-Schnittstelle und prüft, dass die Verluste in `history.json`, die
# Gradientennormen und die Validierungsmetriken auf beiden Ranks mit einem Lauf in einem einzigen
# Prozess auf demselben globalen Batch übereinstimmen.
#
# ### Und der Mittelwert der Mittelwerte?
#
# Die Bibliothek hat keinen Schalter für die Falle, deshalb schreibt die Schleife unten den Schritt
# von Hand aus. Sie entspricht `train_step` ohne MTP und ohne DDP: $N$ zählen, den Anteil jedes
# Micro-Batches zurückpropagieren, die Gradientennorm begrenzen, einen Schritt machen. Damit die
# Falle überhaupt etwas bewirken kann, wird jede Zeile nach einer zufälligen Länge abgeschnitten
# (2 bis 14 Ziele, danach Padding), und die 24 Zeilen eines Schritts werden nach ihrer Länge
# sortiert, bevor sie in $M = 3$ Micro-Batches geteilt werden – so wie es ein Sampler tut, der
# Zeilen ähnlicher Länge gruppiert: Der erste Micro-Batch enthält die kurzen Dokumente, der letzte
# die langen. Drei Rezepte mit je drei Seeds erhalten dieselben Batches:
#
# * **ganzer Batch**: ein Vorwärts- und ein Rückwärtsdurchlauf über alle 24 Zeilen, Verlust $S / N$;
# * **die Korrektur**: drei Micro-Batches, jeder propagiert $S_m / N$ zurück;
# * **Mittelwert der Mittelwerte**: drei Micro-Batches, jeder propagiert $S_m / (M N_m)$ zurück.
#
# Jeder Lauf protokolliert den Verlust, den er zurückpropagiert, summiert über die Micro-Batches:
# die Zahl, die ein Trainingsprotokoll anzeigen würde. Für den Mittelwert der Mittelwerte halten
# wir außerdem den wahren Mittelwert $S / N$ desselben Batches fest.

# %% tags=["nbval-ignore-output"]
toy = TrainConfig(
    seq_len=T, toy_vocab_size=V, n_train_rows=512, n_val_rows=64, d_model=32,
    steps=200, warmup_steps=10, batch_size=24, lr=1e-2, progress=False,
)  # fmt: skip
data = load_data(toy)
summed_ce = LanguageModelingLoss(data.vocab_size, reduction="sum")
M = 3
RECIPES = ("full batch", "fix", "mean of means")


def padded_batch(rows: torch.Generator, lengths: torch.Generator) -> tuple[torch.Tensor, ...]:
    """24 toy rows, each cut after 2 to 14 targets, sorted by length (shortest first)."""
    x, y = get_batch(data, toy.batch_size, rows)  # (B, T), (B, T)
    last = torch.randint(2, T, (len(y), 1), generator=lengths)  # last target kept per row
    y = y.masked_fill(torch.arange(T) > last, -100)  # padding after the end of the document
    order = last[:, 0].argsort()  # length-grouped: micro-batch 1 gets the short rows
    return x[order], y[order]


def run(recipe: str, seed: int) -> tuple[list[float], list[float], float]:
    """Trains one model; returns (logged loss, true batch mean S / N) per step and the val loss."""
    torch.manual_seed(seed)
    model = build_model(toy, data.vocab_size)
    optimizer = build_optimizer(model, toy)
    rows = torch.Generator().manual_seed(100 + seed)  # the same batches for every recipe
    lengths = torch.Generator().manual_seed(200 + seed)
    logged, true_mean = [], []
    for step in range(1, toy.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, toy)
        x, y = padded_batch(rows, lengths)
        N = int((y != -100).sum())  # known before any forward pass
        parts = list(zip(x.tensor_split(M), y.tensor_split(M), strict=True))  # M x (B/M, T)
        if recipe == "full batch":
            parts = [(x, y)]
        optimizer.zero_grad()
        log = S = 0.0
        for x_m, y_m in parts:
            S_m = summed_ce(model(x_m)[0], y_m)  # summed loss of the micro-batch
            N_m = int((y_m != -100).sum())
            loss = S_m / (M * N_m) if recipe == "mean of means" else S_m / N
            loss.backward()  # gradients add up over the micro-batches
            log, S = log + loss.item(), S + S_m.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), toy.grad_clip)
        optimizer.step()
        logged.append(log)
        true_mean.append(S / N)
    return logged, true_mean, evaluate(model, data)["val_loss"]


SEEDS = (0, 1, 2)
results = {(recipe, seed): run(recipe, seed) for seed in SEEDS for recipe in RECIPES}
last = slice(-50, None)  # the last 50 of 200 steps
for seed in SEEDS:
    full, fix, bug = (results[recipe, seed] for recipe in RECIPES)
    fix_gap = max(abs(a - b) for a, b in zip(fix[0], full[0], strict=True))
    bug_gap = max(abs(a - b) for a, b in zip(bug[1], full[0], strict=True))  # same batches
    above = sum(b > f for b, f in zip(bug[1], full[0], strict=True)) / toy.steps
    misreport = (sum(bug[0][last]) - sum(bug[1][last])) / 50
    print(f"seed {seed}: val loss  full batch {full[2]:.3f}  fix {fix[2]:.3f}  mean of means {bug[2]:.3f}")
    print(f"        mean of means: true batch mean above the full batch's in {above:.0%} of the steps; "
          f"logged {misreport:+.3f} nats vs its true batch mean (last 50 steps)")
    assert fix_gap < 1e-5, fix_gap  # the fix is the full-batch run, up to rounding
    assert bug_gap > 1e-3, bug_gap  # the mean of means trains a different model
    # what the text below says of these three seeded runs, checked so that it stays true
    assert bug[2] > full[2] and above > 0.5 and misreport < 0, (bug[2], full[2], above, misreport)
print(f"entropy rate H = {data.entropy_rate:.3f} nats/token")

# %%
# 10-step means: the batch-to-batch noise of single steps hides a 0.03-nat offset
def gap(a: list[float], b: list[float]) -> list[float]:
    """a - b step by step, as a 10-step mean (the mean of a difference: the difference of means)."""
    return moving_average([x - y for x, y in zip(a, b, strict=True)])


steps = range(10, toy.steps + 1)  # the last step of each 10-step window
# one panel above the other, so that both stay readable on a phone
fig, (ax_l, ax_d) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
for recipe, style in zip(RECIPES, (dict(color="C0", lw=4, alpha=0.4), dict(color="C0", ls="--", lw=1.5),
                                   dict(color="C3", lw=1.5)), strict=True):
    ax_l.plot(steps, moving_average(results[recipe, 0][0]), label=f"{recipe}: logged loss", **style)
ax_l.plot(steps, moving_average(results["mean of means", 0][1]), color="C3", ls=":", lw=1.5,
          label="mean of means: true batch mean S / N")
ax_l.set_title("seed 0: training loss (10-step mean)")
ax_l.set_ylabel("loss (nats/token)")
ax_l.legend(fontsize=8)
for seed in SEEDS:
    full, fix, bug = (results[recipe, seed] for recipe in RECIPES)
    label = seed == 0
    ax_d.plot(steps, gap(fix[0], full[0]), color="C0", lw=1.5,
              label="fix, logged minus full batch" if label else None)
    ax_d.plot(steps, gap(bug[1], full[0]), color="C3", lw=1.5,
              label="mean of means, true batch mean minus full batch" if label else None)
    ax_d.plot(steps, gap(bug[0], bug[1]), color="C3", ls=":", lw=1.5,
              label="mean of means, logged minus its true batch mean" if label else None)
ax_d.axhline(0.0, color="k", lw=0.8)
ax_d.set_title("differences, three seeds (10-step mean)")
ax_d.set_xlabel("step")
ax_d.set_ylabel("difference (nats/token)")
ax_d.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown] en
# *Figure:* top, seed 0: the logged training loss of the full batch (thick), of the fix (dashed, on
# top of it) and of the mean of means (red), and the mean of means' true batch mean $S/N$ (red,
# dotted), each averaged over 10 steps. Bottom, three seeds: the fix minus the full batch (blue, at
# zero), the mean of means' true batch mean minus the full batch (red), and its logged loss minus
# its true batch mean (red, dotted).
# %% [markdown] de
# *Abbildung:* oben Seed 0: der protokollierte Trainingsverlust (`logged loss`) des ganzen Batches
# (`full batch`, dick), der Korrektur (`fix`, gestrichelt, deckungsgleich damit) und des Mittelwerts
# der Mittelwerte (`mean of means`, rot) sowie dessen wahrer Batch-Mittelwert $S/N$
# (`true batch mean`, rot gepunktet), jeweils gemittelt über 10 Schritte. Unten drei Seeds: die
# Differenz zwischen Korrektur und ganzem Batch (blau, bei null), beim Mittelwert der Mittelwerte
# die Differenz zwischen wahrem Batch-Mittelwert und ganzem Batch (rot) und die zwischen
# protokolliertem Verlust und wahrem Batch-Mittelwert (rot gepunktet).

# %% [markdown] en
# The fix is the full-batch run again: the blue difference stays at zero (the `assert` allows
# 1e-5). The mean of means is a different run, and it does two things at once. The tokens of the
# micro-batch with the short rows weigh more than their share, those of the long rows less, so it
# optimises a different objective: in all three seeds its true batch mean ran above the full-batch
# run's in most of the 200 steps (64 to 83 %), and its validation loss ended higher (by 0.004 to
# 0.058 nats; all printed above). And what it logs is not the batch mean: over the last 50 steps its
# log read 0.021 to 0.037 nats *below* its own true batch mean, so the number in the log makes the
# run look better than it is. Which way the log errs depends on the data: the analysis that made
# this pitfall widely known (Unsloth 2024, in the references) saw a *higher* logged loss with
# gradient accumulation. These are three seeded runs of a toy model that is still
# far above the floor $H$ after 200 steps; they show the direction of the effect, not its size in a
# real model.
#
# ## Summary
#
# * A split batch must be normalised by the count of the **whole** batch: micro-batch (or rank)
#   $m$ contributes $S_m / N$, its summed loss over the global number of valid targets. Then the
#   parts add up to the full-batch loss, and their gradients to the full-batch gradient, exactly.
# * The mean of per-micro-batch means gives a token the weight $1/(M N_m)$ instead of $1/N$. With
#   2 and 28 targets, a token of the short micro-batch counted 7.5 times its share, the loss was
#   more than three times too large and the gradient error larger than the gradient itself; only
#   equal counts make the two recipes agree.
# * $N$ is known before the first backward pass: count the labels. `LanguageModelingLoss` and
#   `linear_cross_entropy` take it as `num_items_in_batch`; `MultiTokenPredictionLoss` takes one
#   count per term, $N_0, N_1, \dots, N_D$, from `count_items`, because every depth has its own
#   targets.
# * DDP averages gradients over $W$ ranks, so each rank's loss is $W \cdot S_r / N$. Metrics keep
#   sums and all-reduce them, never per-rank means.
# * `aptt_edu.training` with `grad_accum` and under `torchrun` reproduces the full-batch run.
# * Here, with rows grouped by length, the mean of means trained the worse model in all three seeds
#   while its log read below its own true batch mean: the number you watch can hide the damage.
# %% [markdown] de
# Die Korrektur ist wieder der Lauf mit dem ganzen Batch: Die blaue Differenz bleibt bei null (das
# `assert` lässt 1e-5 zu). Der Mittelwert der Mittelwerte ist ein anderer Lauf, und er bewirkt
# zweierlei. Die Tokens des Micro-Batches mit den kurzen Zeilen wiegen mehr, als ihnen zusteht,
# die der langen Zeilen weniger; er optimiert also eine andere Zielfunktion: Bei allen drei Seeds
# lag sein wahrer Batch-Mittelwert in den meisten der 200 Schritte (64 bis 83 %) über dem des Laufs
# mit dem ganzen Batch, und sein Validierungsverlust war am Ende höher (um 0,004 bis 0,058 nat;
# beides steht in der Ausgabe oben). Und was er protokolliert, ist nicht der Mittelwert des Batches:
# Im Mittel über die letzten 50 Schritte lag sein protokollierter Verlust 0,021 bis 0,037 nat
# *unter* seinem eigenen wahren Batch-Mittelwert; die Zahl im Protokoll lässt den Lauf also besser
# aussehen, als er ist. In welche Richtung der protokollierte Verlust abweicht, hängt von den Daten ab: Die
# Analyse, durch die diese Falle weithin bekannt wurde (Unsloth 2024, siehe Quellen), beobachtete
# mit Gradientenakkumulation einen *höheren* protokollierten Verlust. Es handelt sich um drei Läufe mit festen Seeds und einem
# Spielzeugmodell, das nach 200 Schritten noch weit über der Untergrenze $H$ liegt; sie zeigen die
# Richtung des Effekts, nicht seine Größe in einem echten Modell.
#
# ## Zusammenfassung
#
# * Ein aufgeteilter Batch muss mit der Zahl der Ziele im **ganzen** Batch normiert werden:
#   Micro-Batch (oder Rank) $m$ trägt $S_m / N$ bei, seinen summierten Verlust geteilt durch die
#   globale Zahl gültiger Ziele. Dann ergeben die Teile genau den Verlust des ganzen Batches und ihre
#   Gradienten genau dessen Gradienten.
# * Der Mittelwert der Mittelwerte der Micro-Batches gibt einem Token das Gewicht $1/(M N_m)$ statt
#   $1/N$. Bei 2 und 28 Zielen zählte ein Token des kurzen Micro-Batches 7,5-mal so viel, wie ihm
#   zusteht, der Verlust war mehr als dreimal zu groß und der Fehler des Gradienten größer als der
#   Gradient selbst; nur bei gleichen Zahlen stimmen beide Rezepte überein.
# * $N$ ist vor dem ersten Rückwärtsdurchlauf bekannt: Man zählt die Labels. `LanguageModelingLoss`
#   und `linear_cross_entropy` nehmen diese Zahl als `num_items_in_batch` entgegen;
#   `MultiTokenPredictionLoss` erwartet eine Zahl pro Term, $N_0, N_1, \dots, N_D$, aus
#   `count_items`, denn jede Tiefe hat ihre eigenen Ziele.
# * DDP mittelt die Gradienten über $W$ Ranks, also ist der Verlust jedes Ranks $W \cdot S_r / N$.
#   Metriken speichern Summen, nie Mittelwerte pro Rank, und summieren sie per All-Reduce.
# * `aptt_edu.training` mit `grad_accum` und unter `torchrun` reproduziert den Lauf mit dem ganzen
#   Batch.
# * In unserem Versuch mit nach Länge gruppierten Zeilen ergab der Mittelwert der Mittelwerte bei
#   allen drei Seeds das schlechtere Modell, während sein protokollierter Verlust unter seinem
#   eigenen wahren Batch-Mittelwert lag: Gerade die Zahl, die man beobachtet, kann den Schaden
#   verbergen.

# %% [markdown] en
# ## Check your understanding
#
# 1. Micro-batch A has 2 targets, B has 28. Each is averaged on its own and the two means are averaged. How much does one token of A weigh against one token of B?
#    <details><summary>Answer</summary>1/4 against 1/56: a token of A counts 14 times as much as a token of B, where the batch mean would weigh all 30 tokens alike.</details>
# 2. Why must the count N be known before the first micro-batch runs backward, and why is that possible?
#    <details><summary>Answer</summary>Each micro-batch's share S_m / N is back-propagated at once. Counting labels that are not −100 needs only the labels of all micro-batches, no forward pass.</details>
# 3. Why does each MTP depth need a count of its own?
#    <details><summary>Answer</summary>Depth k is scored on labels[:, k:]: k positions fewer per row and different padding, so N_k differs from the main count.</details>
# 4. DDP averages the gradients of W processes. Which loss must rank r back-propagate for the result to be the global batch mean?
#    <details><summary>Answer</summary>W · S_r / N, with S_r its summed loss and N the count of the global batch.</details>
# 5. When do the naive mean of means and the correct normalisation agree?
#    <details><summary>Answer</summary>When every micro-batch (and every rank) has the same number of valid targets, e.g. fixed-length rows without padding or masked boundaries.</details>

# %% [markdown] de
# ## Verständnisfragen
#
# 1. Micro-Batch A hat 2 Ziele, B hat 28. Jeder wird für sich gemittelt, dann werden die beiden Mittelwerte gemittelt. Wie viel wiegt ein Token von A gegenüber einem Token von B?
#    <details><summary>Antwort</summary>1/4 gegenüber 1/56: Ein Token von A zählt 14-mal so viel wie eines von B, während der Mittelwert des Batches alle 30 Tokens gleich gewichten würde.</details>
# 2. Warum muss die Zahl N bekannt sein, bevor für den ersten Micro-Batch der Rückwärtsdurchlauf läuft, und warum ist das möglich?
#    <details><summary>Antwort</summary>Der Anteil S_m / N jedes Micro-Batches wird sofort zurückpropagiert. Um die Labels zu zählen, die nicht −100 sind, braucht man nur die Labels aller Micro-Batches, keinen Vorwärtsdurchlauf.</details>
# 3. Warum braucht jede MTP-Tiefe eine eigene Zahl?
#    <details><summary>Antwort</summary>Tiefe k wird an labels[:, k:] gemessen: k Positionen weniger pro Zeile und anderes Padding, also unterscheidet sich N_k von der Zahl des Haupt-Heads.</details>
# 4. DDP mittelt die Gradienten von W Prozessen. Welchen Verlust muss Rank r zurückpropagieren, damit das Ergebnis der Mittelwert des globalen Batches ist?
#    <details><summary>Antwort</summary>W · S_r / N, wobei S_r sein summierter Verlust und N die Zahl der Ziele im globalen Batch ist.</details>
# 5. Wann stimmen der naive Mittelwert der Mittelwerte und die richtige Normierung überein?
#    <details><summary>Antwort</summary>Wenn jeder Micro-Batch (und jeder Rank) gleich viele gültige Ziele hat, etwa bei Zeilen fester Länge ohne Padding und ohne maskierte Grenzen.</details>

# %% [markdown] en
# **References.** Hugging Face (2024). *Fixing Gradient Accumulation* (lysandre, ArthurZ,
# muellerzr, ydshieh, BenjaminB), https://huggingface.co/blog/gradient_accumulation ·
# Unsloth (2024). *Bugs in LLM Training — Gradient Accumulation Fix*, https://unsloth.ai/blog/gradient ·
# huggingface/transformers pull requests #34191 "Fix Gradient Accumulation issue",
# https://github.com/huggingface/transformers/pull/34191, #34198,
# https://github.com/huggingface/transformers/pull/34198, and #34283 "Enable Gradient Accumulation
# fix across all models + trainer fully in forward()",
# https://github.com/huggingface/transformers/pull/34283 · PyTorch documentation,
# *DistributedDataParallel* (gradients are averaged across processes; `no_sync`),
# https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html
# %% [markdown] de
# **Quellen.** Hugging Face (2024). *Fixing Gradient Accumulation* (lysandre, ArthurZ,
# muellerzr, ydshieh, BenjaminB), https://huggingface.co/blog/gradient_accumulation ·
# Unsloth (2024). *Bugs in LLM Training — Gradient Accumulation Fix*, https://unsloth.ai/blog/gradient ·
# huggingface/transformers Pull-Requests #34191 „Fix Gradient Accumulation issue“,
# https://github.com/huggingface/transformers/pull/34191, #34198,
# https://github.com/huggingface/transformers/pull/34198 und #34283 „Enable Gradient Accumulation
# fix across all models + trainer fully in forward()“,
# https://github.com/huggingface/transformers/pull/34283 · PyTorch-Dokumentation,
# *DistributedDataParallel* (Gradienten werden über die Prozesse gemittelt; `no_sync`),
# https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html
