# %% [markdown] en
# # 04 · The training pipeline
#
# Notebooks 01–03 took the output side apart. Here it comes back together: the whole training step
# of the output side, written out once by hand on the tiny model, then the inference loop, then all
# five output-side variants trained on the same data and compared against the lowest loss any model
# can reach.
#
# 1. the data: the toy language of notebook 00, with its known entropy floor;
# 2. one training step by hand — batch, model, heads, loss, backward, clipping, optimizer;
# 3. inference: greedy decoding and sampling by hand, checked against `GPT.generate`;
# 4. all variants on one plot, with the floor;
# 5. what to take from them.
#
# **Goals.** After this notebook you can write out one training step of the output side (batch,
# model, heads, loss, backward, clipping, AdamW) and check it against the library, decode greedily
# and with a temperature, and compare five output-side variants against the floor $H$.
# **Prerequisites.** Notebooks 00–03.
# **Time.** About 25 minutes of reading, plus two exercises; under a minute to run.
# **Builds on.** Notebooks 00, 01, 02 and 03.

# %% [markdown] de
# # 04 · Die Trainingspipeline
#
# Die Notebooks 01–03 haben die Ausgabeseite zerlegt. Hier wird sie wieder zusammengesetzt: der
# ganze Trainingsschritt der Ausgabeseite, einmal von Hand am winzigen Modell ausprogrammiert, dann
# die Inferenzschleife, dann alle fünf Varianten der Ausgabeseite auf denselben Daten trainiert und
# mit dem kleinsten Verlust verglichen, den überhaupt ein Modell erreichen kann.
#
# 1. die Daten: die Spielzeugsprache aus Notebook 00 mit ihrer bekannten Entropie-Untergrenze;
# 2. ein Trainingsschritt von Hand – Batch, Modell, Heads, Verlust, Rückwärtsdurchlauf (Backward
#    Pass), Clipping, Optimierer;
# 3. Inferenz: Greedy-Dekodierung und Sampling von Hand, abgeglichen mit `GPT.generate`;
# 4. alle Varianten in einem Diagramm, mit der Untergrenze;
# 5. was man daraus mitnimmt.
#
# **Lernziele.** Nach diesem Notebook können Sie einen Trainingsschritt der Ausgabeseite explizit
# ausprogrammieren (Batch, Modell, Heads, Verlust, Rückwärtsdurchlauf, Clipping, AdamW) und mit der
# Bibliothek abgleichen, greedy und mit Temperatur dekodieren und fünf Varianten der Ausgabeseite
# mit der Untergrenze $H$ vergleichen.
# **Voraussetzungen.** Notebooks 00–03.
# **Zeit.** Etwa 25 Minuten Lesezeit, dazu zwei Aufgaben; unter einer Minute Laufzeit.
# **Grundlage.** Notebooks 00, 01, 02 und 03.
# **Sprache.** Abbildungen, Code, Code-Kommentare und Zellausgaben sind in beiden Sprachfassungen
# englisch; der Text erklärt, was sie zeigen.

# %%
import math

import matplotlib.pyplot as plt
import torch

from aptt_edu.data import get_batch, toy_data
from aptt_edu.exercises import check
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss
from aptt_edu.plotting import plot_loss_curves
from aptt_edu.training import (
    VARIANTS,
    TrainConfig,
    build_model,
    build_optimizer,
    compute_loss,
    summary_markdown,
    train,
)

torch.manual_seed(0)
torch.set_num_threads(1)  # one thread: the same float sums on any machine
cfg = TrainConfig(progress=False)  # the package defaults, as `make demo` uses them


# %% en tags=["language"]
LANG = "en"  # the language of the exercises' feedback (the German notebook sets "de")

# %% de tags=["language"]
LANG = "de"  # die Sprache der Rückmeldungen zu den Aufgaben (das englische Notebook setzt "en")
# %% [markdown] en
# ## 1. The data: a language whose best possible loss we know
#
# `toy_data` draws a random sparse Markov chain of order 2 (the next letter depends on the previous
# two) and samples training and validation rows from it with different seeds. Because the source is
# known, its **entropy rate** $H = \sum_c \pi(c)\, H\big(P(\cdot \mid c)\big)$ — the stationary
# average uncertainty of the next token — can be computed exactly. No model can have an expected
# validation loss below $H$. The depth-1 MTP target $t_{i+2}$ is harder to guess without $t_{i+1}$;
# its floor $H_2$ is computed too.
# %% [markdown] de
# ## 1. Die Daten: eine Sprache, deren bestmöglichen Verlust wir kennen
#
# `toy_data` zieht eine zufällige, dünn besetzte Markow-Kette 2. Ordnung (der nächste Buchstabe hängt
# von den beiden vorigen ab) und erzeugt daraus mit verschiedenen Seeds Trainings- und
# Validierungszeilen. Weil die Quelle bekannt ist, lässt sich ihre **Entropierate**
# $H = \sum_c \pi(c)\, H\big(P(\cdot \mid c)\big)$ – die stationär gemittelte Unsicherheit des
# nächsten Tokens – exakt berechnen. Kein Modell kann einen erwarteten Validierungsverlust unter $H$
# haben. Das Ziel $t_{i+2}$ der MTP-Tiefe 1 ist ohne $t_{i+1}$ schwerer zu erraten; auch seine
# Untergrenze $H_2$ wird berechnet.

# %%
data = toy_data(
    seq_len=cfg.seq_len,
    n_train=cfg.n_train_rows,
    n_val=cfg.n_val_rows,
    vocab_size=cfg.toy_vocab_size,
    seed=cfg.seed,
)
print(data.description)
print(f"train rows {tuple(data.train.shape)}, validation rows {tuple(data.val.shape)}")
print(f"entropy rate H = {data.entropy_rate:.4f} nats/token, MTP depth-1 floor H2 = {data.mtp_entropy:.4f}")
print(f"uniform guessing would cost log V = {math.log(data.vocab_size):.4f}")
print("a sample row:", data.decode(data.train[0]))
assert data.entropy_rate < data.mtp_entropy < math.log(data.vocab_size)

# %% [markdown] en
# ## 2. One training step, by hand
#
# The training step of the output side, with every tensor's shape printed: token ids → Transformer
# trunk → `CombinedLMHead` (main logits and, in training, MTP logits) →
# `MultiTokenPredictionLoss` ($\mathcal{L} = \mathcal{L}_\text{main} + \lambda\,\mathcal{L}^1_\text{MTP}$)
# → backward → gradient clipping → AdamW. `compute_loss` in `aptt_edu.training` is exactly the forward
# half of this cell; the assert checks that.
# %% [markdown] de
# ## 2. Ein Trainingsschritt von Hand
#
# Der Trainingsschritt der Ausgabeseite, wobei die Form jedes Tensors ausgegeben wird: Token-IDs →
# Transformer-Rumpf → `CombinedLMHead` (Haupt-Logits und im Training die MTP-Logits) →
# `MultiTokenPredictionLoss` ($\mathcal{L} = \mathcal{L}_\text{main} + \lambda\,\mathcal{L}^1_\text{MTP}$)
# → Rückwärtsdurchlauf → Gradient-Clipping → AdamW. `compute_loss` in `aptt_edu.training` ist genau die
# erste Hälfte dieser Zelle, der Vorwärtsdurchlauf (Forward Pass); das `assert` prüft das.

# %%
step_cfg = TrainConfig(mtp="simple", mtp_depth=1, mtp_lambda=0.3, progress=False)
model = build_model(step_cfg, data.vocab_size).train()
optimizer = build_optimizer(model, step_cfg)
loss_fn = MultiTokenPredictionLoss(data.vocab_size, mtp_depth=1, mtp_lambda=0.3)

inputs, labels = get_batch(data, step_cfg.batch_size, torch.Generator().manual_seed(0))  # (B, T) each
hidden = model.norm(model.trunk(inputs))  # (B, T, d) final hidden states
main_logits, mtp_logits = model.head(hidden)  # (B, T, V) and [(B, T-1, V)]
total, parts = loss_fn(main_logits, mtp_logits, labels)
print(f"inputs {tuple(inputs.shape)} -> hidden {tuple(hidden.shape)} -> main logits "
      f"{tuple(main_logits.shape)}, MTP logits {[tuple(z.shape) for z in mtp_logits]}")
print({name: round(value.item(), 4) for name, value in parts.items()})
assert abs(total.item() - (parts["main_loss"] + 0.3 * parts["mtp_loss_1"]).item()) < 1e-6
assert torch.allclose(total, compute_loss(model, loss_fn, inputs, labels)[0])

optimizer.zero_grad()
total.backward()
grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=step_cfg.grad_clip)
optimizer.step()
after, _ = compute_loss(model, loss_fn, inputs, labels)
print(f"gradient norm before clipping {grad_norm.item():.4f}; loss {total.item():.4f} -> {after.item():.4f} after one step")
assert after < total

# %% [markdown] en
# ### Exercise: the gradient norm that clipping uses
#
# Write `my_grad_norm(grads)`: the one number that `clip_grad_norm_` compares with `max_norm`,
# the L2 norm of *all* gradients together (a list of tensors of any shapes), as a 0-dim tensor. If
# it exceeds `max_norm`, every gradient is scaled by `max_norm / norm`. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Die Gradientennorm, die das Clipping verwendet
#
# Schreiben Sie `my_grad_norm(grads)`: genau die Zahl, die `clip_grad_norm_` mit `max_norm`
# vergleicht, also die L2-Norm *aller* Gradienten zusammen (eine Liste von Tensoren beliebiger Form),
# als 0-dimensionaler Tensor. Liegt sie über `max_norm`, wird jeder Gradient mit `max_norm / norm`
# skaliert. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren
# Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung
# ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_grad_norm(grads):
    """A list of gradient tensors -> their global L2 norm (0-dim)."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_grad_norm(grads):
    # all gradients as one long vector: sqrt(sum over tensors of sum of squares)
    return torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).float()

# %%
result = check("grad_norm", my_grad_norm, lang=LANG)

# %% [markdown] en
# ## 3. Inference: one token at a time
#
# At inference the MTP part is dropped (`model.eval()` makes `CombinedLMHead` return `None` for it)
# and the model is run in a loop: feed the sequence, take the logits of the **last** position,
# pick a token, append it, repeat. Greedy decoding picks $\arg\max_v z_v$; sampling with temperature
# $\tau$ draws from $\mathrm{softmax}(z/\tau)$. We train a baseline model first, decode by hand and
# check that `GPT.generate` gives the same tokens.
# %% [markdown] de
# ## 3. Inferenz: ein Token nach dem anderen
#
# Bei der Inferenz fällt der MTP-Teil weg (`model.eval()` lässt `CombinedLMHead` dafür `None`
# liefern), und das Modell läuft in einer Schleife: Sequenz einspeisen, die Logits der **letzten**
# Position nehmen, ein Token wählen, anhängen, wiederholen. Greedy-Dekodierung nimmt
# $\arg\max_v z_v$; Sampling mit Temperatur $\tau$ zieht aus $\mathrm{softmax}(z/\tau)$. Wir
# trainieren zuerst ein Baseline-Modell (`baseline`), dekodieren von Hand und prüfen, dass
# `GPT.generate` dieselben Tokens liefert.

# %%
baseline = train(cfg, data)
model = baseline.model.eval()
prompt = data.val[:1, :8]  # (1, 8) the first 8 tokens of a validation row
ids = prompt.clone()
with torch.no_grad():
    for _ in range(24):
        logits, mtp = model(ids[:, -cfg.seq_len :])  # (1, t, V), None in eval mode
        assert mtp is None
        next_id = logits[:, -1].argmax(dim=-1, keepdim=True)  # (1, 1) greedy choice
        ids = torch.cat([ids, next_id], dim=1)
print("prompt :", data.decode(prompt[0]))
print("greedy :", data.decode(ids[0]))
assert torch.equal(ids, model.generate(prompt, max_new_tokens=24, temperature=0))
for tau in (0.5, 1.0):
    sampled = model.generate(prompt, 24, temperature=tau, generator=torch.Generator().manual_seed(0))
    print(f"τ = {tau}: ", data.decode(sampled[0]))

# %% [markdown] en
# Greedy decoding of a source with real uncertainty tends to fall into the most likely loop; sampling
# at $\tau = 1$ reproduces the source's statistics, which is what the cross-entropy trained for.
# %% [markdown] de
# Greedy-Dekodierung einer Quelle mit echter Unsicherheit landet oft in der wahrscheinlichsten
# Schleife; Sampling mit $\tau = 1$ reproduziert die Statistik der Quelle – genau das, worauf das
# Training mit Kreuzentropie abzielt.

# %% [markdown] en
# ### Exercise: sampling with a temperature
#
# Write `my_temperature_softmax(logits, temperature)`: for logits `(B, V)` and $\tau > 0$ the
# distribution $\mathrm{softmax}(z / \tau)$ of each row, `(B, V)` — what `generate` samples from. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Sampling mit Temperatur
#
# Schreiben Sie `my_temperature_softmax(logits, temperature)`: für Logits `(B, V)` und
# $\tau > 0$ die Verteilung $\mathrm{softmax}(z / \tau)$ jeder Zeile, `(B, V)` – die Verteilung, aus
# der `generate` zieht. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus: Sie
# testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht
# stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_temperature_softmax(logits, temperature):
    """(B, V) logits, tau > 0 -> (B, V) probabilities softmax(logits / tau) per row."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_temperature_softmax(logits, temperature):
    z = logits / temperature  # tau < 1 sharpens, tau > 1 flattens
    z = z - z.max(dim=-1, keepdim=True).values  # the same distribution, no overflow
    return z.exp() / z.exp().sum(dim=-1, keepdim=True)

# %%
result = check("temperature_softmax", my_temperature_softmax, lang=LANG)

# %% [markdown] en
# ## 4. All variants, one plot
#
# The five variants of `python -m aptt_edu compare` (and `make demo`), trained with the same
# seed on the same data: baseline, label smoothing 0.1, weight tying, the simple MTP head
# (D = 1, λ = 0.3), and the DeepSeek-V3 MTP module. The validation loss is always the plain
# main-head cross-entropy, so every curve can be compared with the floor $H$.
# %% [markdown] de
# ## 4. Alle Varianten in einem Diagramm
#
# Die fünf Varianten von `python -m aptt_edu compare` (und `make demo`), mit demselben Seed auf
# denselben Daten trainiert: die Baseline (`baseline`), Label Smoothing 0,1 (`label_smoothing`),
# Gewichtsbindung (`weight_tying`), der einfache MTP-Head (`mtp`; D = 1, λ = 0,3) und das
# MTP-Modul von DeepSeek-V3 (`deepseek_mtp`). Der Validierungsverlust ist immer die einfache
# Kreuzentropie des Haupt-Heads, sodass jede Kurve mit der Untergrenze $H$ vergleichbar ist.

# %% tags=["nbval-ignore-output"]
import dataclasses

runs = {"baseline": baseline}
for name, overrides in VARIANTS.items():
    if name != "baseline":
        runs[name] = train(dataclasses.replace(cfg, **overrides), data)
H = data.entropy_rate
shown = {  # legend names for readers; the dict keys are the names of VARIANTS
    "baseline": "baseline", "label_smoothing": "label smoothing ε = 0.1",
    "weight_tying": "weight tying", "mtp": "simple MTP head (D = 1)",
    "deepseek_mtp": "DeepSeek MTP module (D = 1)",
}  # fmt: skip
curves = {shown[name]: h for name, h in runs.items()}
fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(12, 4.5))
plot_loss_curves(curves, floor=H, ax=ax_all)
ax_all.set_title("Whole run")
plot_loss_curves(curves, floor=H, ax=ax_zoom, ylim=(H - 0.05, H + 0.35), show_train=False)
ax_zoom.get_legend().remove()  # the same colours as on the left
ax_zoom.set_title("Validation loss near the floor H")
plt.show()
for name, h in runs.items():
    print(f"{name:16s} val loss {h.val_loss[-1]:.4f}  gap {h.val_loss[-1] - H:+.4f}  "
          f"params {h.n_params:,} (inference {h.n_params_inference:,})")
assert runs["baseline"].val_loss[-1] - H < 0.10  # the baseline ends within 0.1 nats of the floor
assert runs["weight_tying"].n_params == runs["baseline"].n_params - data.vocab_size * cfg.d_model
assert all(h.val_loss[-1] < math.log(data.vocab_size) for h in runs.values())
for name in ("mtp", "deepseek_mtp"):  # what this one seeded run shows, reported, not asserted
    change = runs[name].val_loss[-1] - runs["baseline"].val_loss[-1]
    print(f"this run: {name} changes the final validation loss by {change:+.3f} nats")

# %% [markdown] en
# *Figure:* left, validation loss (thick) and training loss (faint) of the five variants, all
# trained on the same data, with the floor $H$ dashed; right, their validation loss near $H$, in the
# same colours.
# %% [markdown] de
# *Abbildung:* links („Whole run“) der ganze Lauf der fünf Varianten, alle auf denselben Daten
# trainiert: blass und dünn der Trainingsverlust des Haupt-Heads, kräftig und mit Punkten der
# Validierungsverlust (in der Legende `… (val)`), gestrichelt die Untergrenze $H$ („entropy rate
# H“); rechts („Validation loss near the floor H“) nur die Validierungsverluste, in einem
# vergrößerten Ausschnitt rund um $H$, in denselben Farben.

# %% [markdown] en
# The timing columns of the summary depend on the machine, so this cell's output is not compared by
# the notebook tests; everything above is.
# %% [markdown] de
# Die Zeitspalten der Zusammenfassung hängen von der Maschine ab; die Ausgabe der folgenden Zelle
# wird von den Notebook-Tests deshalb nicht verglichen, alles darüber schon.

# %% tags=["nbval-ignore-output"]
from IPython.display import Markdown

Markdown(summary_markdown(runs, heading=False))  # the notebook has its own title

# %% [markdown] en
# ## 5. What to take from it
#
# - **The floor is the yardstick.** On a source with known entropy rate, "loss 1.0" means nothing by
#   itself; a gap of a few hundredths of a nat above $H$ (printed above) says the model has learned
#   almost everything there is to learn.
# - **Label smoothing** trades a little validation loss for lower confidence (notebook 01): its
#   optimum is the smoothed target, not the true distribution, so on a source that is already
#   uncertain it cannot reach $H$ exactly.
# - **Weight tying** saves $V \cdot d$ parameters (notebook 02). With only $V = 16$ tokens that is
#   1,024 parameters here (the parameter column above); with GPT-2's 50,257 tokens it is almost a third
#   of the model — notebook 02 computes the share for published models.
# - **Multi-token prediction** adds a training signal but costs compute. On a tiny model it does not
#   have to help the next-token loss — Gloeckle et al. (2024) report, on code benchmarks, that it
#   hurts small models and helps large ones; DeepSeek-V3 uses it at 671B parameters. The MTP rows above differ from the
#   baseline by about a hundredth of a nat, in either direction, from a single seed — too little to
#   call a win. Measure on your own model before believing either claim.
# %% [markdown] de
# ## 5. Was man daraus mitnimmt
#
# - **Die Untergrenze ist der Maßstab.** Bei einer Quelle mit bekannter Entropierate sagt
#   „Verlust 1,0“ für sich genommen nichts; ein Abstand von wenigen Hundertsteln nat über $H$ (oben
#   ausgegeben) bedeutet, dass das Modell fast alles gelernt hat, was es zu lernen gibt.
# - **Label Smoothing** erkauft eine geringere Konfidenz mit etwas höherem Validierungsverlust
#   (Notebook 01): Sein Optimum ist das geglättete Ziel, nicht die wahre Verteilung; bei einer
#   ohnehin unsicheren Quelle erreicht es $H$ daher nicht genau.
# - **Gewichtsbindung** spart $V \cdot d$ Parameter (Notebook 02). Mit nur $V = 16$ Tokens sind das
#   hier 1.024 Parameter (Spalte `params` oben); mit den 50.257 Tokens von GPT-2 fast ein Drittel des
#   Modells – Notebook 02 berechnet den Anteil für veröffentlichte Modelle.
# - **Multi-Token-Prediction** fügt ein Trainingssignal hinzu, kostet aber Rechenaufwand. Bei einem
#   winzigen Modell muss sie dem Next-Token-Verlust nicht helfen – Gloeckle et al. (2024) berichten
#   für Code-Benchmarks, dass sie kleinen Modellen schadet und großen hilft; DeepSeek-V3 setzt sie bei
#   671 Mrd. Parametern ein. Die MTP-Zeilen oben weichen von der Baseline um etwa ein Hundertstel nat
#   ab, in die eine oder die andere Richtung und bei nur einem Seed – zu wenig, um von einem Gewinn zu
#   sprechen. Messen Sie am eigenen Modell, bevor Sie einer der beiden Behauptungen glauben.

# %% [markdown] en
# ## Check your understanding
#
# 1. The global gradient norm is 4 and `max_norm = 1`. What does clipping do?
#    <details><summary>Answer</summary>It multiplies every gradient by 1/4: the direction of the update stays, its length is capped.</details>
# 2. Why does greedy decoding of the toy language tend to fall into a loop, while sampling at τ = 1 does not?
#    <details><summary>Answer</summary>Greedy decoding always takes the most likely successor, a deterministic walk through the table that must end in a cycle. Sampling at τ = 1 draws from the model's distribution, which matches the source's.</details>
# 3. What does softmax(z/τ) become as τ → 0 and as τ → ∞?
#    <details><summary>Answer</summary>One-hot on the arg max (greedy decoding), and the uniform distribution.</details>
# 4. Why is the validation loss the plain cross-entropy for every variant, label smoothing included?
#    <details><summary>Answer</summary>The training objectives differ between the variants; only the plain next-token cross-entropy can be compared across them and with the floor H.</details>
# 5. In one seeded run the MTP variants differ from the baseline by about a hundredth of a nat. What would you need before calling that a gain?
#    <details><summary>Answer</summary>Several seeds and the spread between them (or a setting where the difference is larger than that spread). One run is one observation.</details>

# %% [markdown] de
# ## Verständnisfragen
#
# 1. Die globale Gradientennorm ist 4 und `max_norm = 1`. Was macht das Clipping?
#    <details><summary>Antwort</summary>Es multipliziert jeden Gradienten mit 1/4: Die Richtung des Schritts bleibt erhalten, seine Länge wird begrenzt.</details>
# 2. Warum landet Greedy-Dekodierung auf der Spielzeugsprache oft in einer Schleife, Sampling mit τ = 1 aber nicht?
#    <details><summary>Antwort</summary>Greedy-Dekodierung nimmt immer den wahrscheinlichsten Nachfolger; das ist ein deterministischer Weg durch die Tabelle, der in einem Zyklus enden muss. Sampling mit τ = 1 zieht aus der Verteilung des Modells, und die entspricht der Verteilung der Quelle.</details>
# 3. Was wird aus softmax(z/τ) für τ → 0 und für τ → ∞?
#    <details><summary>Antwort</summary>Für τ → 0 ein One-Hot-Vektor auf dem Argmax (Greedy-Dekodierung), für τ → ∞ die Gleichverteilung.</details>
# 4. Warum ist der Validierungsverlust für jede Variante die einfache Kreuzentropie, auch für Label Smoothing?
#    <details><summary>Antwort</summary>Die Zielfunktionen des Trainings unterscheiden sich zwischen den Varianten; nur die einfache Next-Token-Kreuzentropie lässt sich zwischen ihnen und mit der Untergrenze H vergleichen.</details>
# 5. In einem Lauf mit festem Seed weichen die MTP-Varianten um etwa ein Hundertstel nat von der Baseline ab. Was bräuchten Sie, bevor Sie von einem Gewinn sprechen könnten?
#    <details><summary>Antwort</summary>Mehrere Seeds und die Streuung zwischen ihnen (oder einen Versuchsaufbau, in dem der Unterschied größer ist als diese Streuung). Ein Lauf ist eine einzige Beobachtung.</details>
