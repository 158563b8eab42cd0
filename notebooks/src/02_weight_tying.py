# %% [markdown] en
# # 02 · Weight tying: one matrix for the input and the output
#
# A language model touches its vocabulary twice. At the bottom, the **embedding** turns each token id
# into a vector of width $d$; at the top, the **output head** (LM head, unembedding) turns the final
# hidden state back into one score per vocabulary entry. Both are $V \times d$ matrices. *Weight
# tying* (Press & Wolf, 2017; Inan et al., 2017) uses **one** matrix for both jobs.
#
# In this notebook you
#
# 1. derive, in code, what is shared and why the shapes allow it — the embedding *is* a transposed
#    unembedding;
# 2. recompute two claims about tying from a widely shared design note for LLM output heads
#    ("~4 % fewer parameters for $V$ = 50k, $d$ = 2048", "Main Head 400 MB") and find out for which model they hold — and what the head
#    costs that tying does *not* save;
# 3. read from published configurations which well-known models tie and which do not, and compute
#    how large a share of each model the vocabulary matrices are;
# 4. watch the gradients of both uses land in one tensor;
# 5. train a tiny Transformer tied and untied on a toy language with a known entropy floor.
#
# Everything is sized to run on a CPU in under a minute on an idle machine. Every number we compute
# is printed by a cell or checked by an `assert`; numbers quoted from papers and model cards carry
# their source.
#
# **Goals.** After this notebook you can say why the input embedding and the output head may share
# one matrix, tie them in PyTorch as one `Parameter`, count a tied model's parameters, recompute what
# tying saves for published models, and follow the two gradients into the one tensor.
# **Prerequisites.** Notebooks 00 and 01 (the gradient $p - \mathrm{onehot}(y)$, the loss).
# **Time.** About 30 minutes of reading for the core path (sections 1 and 4) and 25 more for the
# deep dives (sections 2, 3 and 5: the savings, who ties, the training run), plus two exercises;
# under a minute to run.
# **Builds on.** Notebooks 00 and 01.

# %% [markdown] de
# # 02 · Gewichtsbindung: eine Matrix für Ein- und Ausgabe
#
# Ein Sprachmodell hat zweimal mit seinem Vokabular zu tun. Ganz unten macht die **Embedding-Matrix**
# aus jeder Token-ID einen Vektor der Breite $d$; ganz oben macht die **Ausgabeschicht** (LM-Head)
# aus dem letzten Hidden State wieder eine Bewertung für jeden Eintrag des Vokabulars. Beides sind
# $V \times d$-Matrizen. Bei der *Gewichtsbindung* (Weight Tying; Press & Wolf, 2017; Inan et al.,
# 2017) erledigt **eine einzige** Matrix beide Aufgaben.
#
# In diesem Notebook
#
# 1. leiten wir im Code her, was geteilt wird und warum die Formen das erlauben – die
#    Embedding-Matrix *ist* eine transponierte Ausgabematrix;
# 2. rechnen wir zwei Behauptungen einer verbreiteten Entwurfsnotiz für LLM-Ausgabeschichten
#    nach („~4 % weniger Parameter bei $V$ = 50k, $d$ = 2048“, „Main Head 400 MB“) und klären, für welches Modell sie gelten – und
#    welche Kosten des Heads die Bindung *nicht* senkt;
# 3. lesen wir aus veröffentlichten Konfigurationen ab, welche bekannten Modelle ihre Gewichte binden
#    und welche nicht, und berechnen, welchen Anteil die Vokabular-Matrizen am ganzen Modell haben;
# 4. sehen wir zu, wie die Gradienten beider Verwendungen in einem Tensor landen;
# 5. trainieren wir einen winzigen Transformer einmal gebunden, einmal ungebunden auf einer
#    Spielzeugsprache mit bekannter Entropie-Untergrenze.
#
# Alles ist so klein gehalten, dass es auf einem unbelasteten Rechner in unter einer Minute auf der
# CPU läuft. Jede Zahl, die wir berechnen, wird von einer Zelle ausgegeben oder von einem `assert`
# geprüft; Zahlen aus Veröffentlichungen und Model Cards sind mit Quelle angegeben.
#
# **Lernziele.** Nach diesem Notebook können Sie begründen, warum sich Eingabe-Embedding und
# Ausgabeschicht eine Matrix teilen dürfen, beide in PyTorch als einen `Parameter` binden, die
# Parameter eines gebundenen Modells zählen, nachrechnen, was die Bindung bei veröffentlichten
# Modellen spart, und die beiden Gradienten in den einen Tensor verfolgen.
# **Voraussetzungen.** Notebooks 00 und 01 (der Gradient $p - \mathrm{onehot}(y)$, der Verlust).
# **Zeit.** Etwa 30 Minuten Lesezeit für den Kernpfad (Abschnitte 1 und 4) und 25 weitere für die
# Vertiefungen (Abschnitte 2, 3 und 5: die Ersparnis, wer Gewichtsbindung nutzt, der
# Trainingslauf), dazu zwei Aufgaben; unter einer Minute Laufzeit.
# **Grundlage.** Notebooks 00 und 01.
# **Sprache.** Abbildungen, Code, Code-Kommentare und Zellausgaben sind in beiden Sprachfassungen
# englisch; der Text erklärt, was sie zeigen.

# %%
import dataclasses
import time
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from aptt_edu import shift_labels
from aptt_edu.exercises import check
from aptt_edu.heads.language_modeling import LanguageModelingHead
from aptt_edu.layers import Block
from aptt_edu.loss.language_modeling import LanguageModelingLoss
from aptt_edu.model import GPT, GPTConfig
from aptt_edu.plotting import plot_loss_curves
from aptt_edu.training import TrainConfig, load_data, train

_ = torch.manual_seed(0)


# %% en tags=["language"]
LANG = "en"  # the language of the exercises' feedback (the German notebook sets "de")

# %% de tags=["language"]
LANG = "de"  # die Sprache der Rückmeldungen zu den Aufgaben (das englische Notebook setzt "en")
# %% [markdown] en
# ## 1. What is shared, and why that is allowed
#
# ### The embedding: a lookup is a matrix product
#
# `nn.Embedding(V, d)` stores a matrix $E \in \mathbb{R}^{V \times d}$; row $t$ is the vector of
# token $t$. Looking a token up is the same as multiplying its one-hot vector with $E$:
# $x_t = \mathrm{onehot}(t)\,E$.
# %% [markdown] de
# ## 1. Was geteilt wird und warum das erlaubt ist
#
# ### Die Embedding-Matrix: Nachschlagen ist ein Matrixprodukt
#
# `nn.Embedding(V, d)` speichert eine Matrix $E \in \mathbb{R}^{V \times d}$; Zeile $t$ ist der
# Vektor von Token $t$. Ein Token nachzuschlagen ist dasselbe, wie seinen One-Hot-Vektor mit $E$ zu
# multiplizieren: $x_t = \mathrm{onehot}(t)\,E$.

# %%
V, d = 10, 4  # a toy vocabulary of 10 tokens, hidden width 4
emb = nn.Embedding(V, d)
E = emb.weight  # (V, d): row t is the input vector of token t

tokens = torch.tensor([3, 0, 7])  # (T,)
x_lookup = emb(tokens)  # (T, d)
# x_t = onehot(t) · E
x_matmul = F.one_hot(tokens, V).float() @ E  # (T, V) @ (V, d) -> (T, d)
assert torch.allclose(x_lookup, x_matmul, atol=0.0)
print("E:", tuple(E.shape), "  one-hot:", tuple(F.one_hot(tokens, V).shape), "  x:", tuple(x_lookup.shape))

# %% [markdown] en
# ### The head: one dot product per vocabulary entry
#
# The LM head maps a hidden state $h \in \mathbb{R}^d$ to logits $z \in \mathbb{R}^V$. The library's
# `LanguageModelingHead` stores its weight the way `nn.Linear(d, V)` does, as
# $W \in \mathbb{R}^{V \times d}$, and computes $z = h W^\top$. Written per entry, $z_v = h \cdot w_v$: row $v$ of $W$ is
# a vector that *scores* token $v$. The matrix that maps $\mathbb{R}^d \to \mathbb{R}^V$ — the
# *unembedding* — is $U = W^\top \in \mathbb{R}^{d \times V}$.
# %% [markdown] de
# ### Die Ausgabeschicht: ein Skalarprodukt pro Vokabeleintrag
#
# Der LM-Head bildet einen Hidden State $h \in \mathbb{R}^d$ auf Logits $z \in \mathbb{R}^V$ ab.
# Der `LanguageModelingHead` der Bibliothek speichert sein Gewicht wie `nn.Linear(d, V)` als
# $W \in \mathbb{R}^{V \times d}$ und rechnet $z = h W^\top$. Eintragsweise heißt das
# $z_v = h \cdot w_v$: Zeile $v$ von $W$ ist ein Vektor, der Token $v$ *bewertet*. Die Matrix, die
# $\mathbb{R}^d \to \mathbb{R}^V$ abbildet – die Ausgabematrix (Unembedding) – ist
# $U = W^\top \in \mathbb{R}^{d \times V}$.

# %%
head = LanguageModelingHead(d_model=d, vocab_size=V)  # untied for now
W = head.weight  # (V, d): row v scores token v
h = torch.randn(2, 3, d)  # (B, T, d) hidden states, standing in for a Transformer's output
logits = head(h)  # (B, T, V)
# z = h Wᵀ, i.e. z_v = h · w_v
assert torch.allclose(logits, h @ W.T, atol=1e-6)
print("W:", tuple(W.shape), "  same shape as E:", W.shape == E.shape, "  logits:", tuple(logits.shape))

# %% [markdown] en
# $E$ and $W$ have the same shape: $V$ rows of width $d$, one vector per token. Nothing stops us from
# using the same matrix for both, $W = E$. Then the unembedding is $U = E^\top$ — the embedding,
# transposed — and the logit of token $v$ is the dot product of the hidden state with that token's
# own input vector,
#
# $$z_v = h \cdot e_v .$$
#
# *Why this is reasonable, not just possible:* both matrices hold one vector per token, and tokens
# that are used alike should get similar vectors in both. Press & Wolf (2017) showed that the output
# matrix of a trained language model is itself a good word embedding and recommend tying; Inan et
# al. (2017) derive tying from a loss framework. Tying also means that a token which is rare as an
# *input* still gets its vector trained through the head, where every token receives a gradient at
# every position (section 4 shows this).
#
# ### Tying with the library
#
# `LanguageModelingHead.tie_embedding_weights(emb)` does not copy anything: it makes the head's
# `weight` *the same* `nn.Parameter` object as `emb.weight`.
# %% [markdown] de
# $E$ und $W$ haben dieselbe Form: $V$ Zeilen der Breite $d$, ein Vektor pro Token. Nichts hindert
# uns daran, für beides dieselbe Matrix zu nehmen, $W = E$. Dann ist die Ausgabematrix $U = E^\top$
# – die transponierte Embedding-Matrix –, und der Logit von Token $v$ ist das Skalarprodukt des
# Hidden States mit dem Eingabevektor genau dieses Tokens,
#
# $$z_v = h \cdot e_v .$$
#
# *Warum das nicht nur möglich, sondern auch sinnvoll ist:* Beide Matrizen enthalten einen Vektor pro
# Token, und Tokens, die ähnlich verwendet werden, sollten in beiden ähnliche Vektoren bekommen.
# Press & Wolf (2017) zeigen, dass die Ausgabematrix eines trainierten Sprachmodells selbst ein gutes
# Wort-Embedding ist, und empfehlen die Gewichtsbindung; Inan et al. (2017) leiten sie aus einem
# theoretischen Rahmen für die Verlustfunktion her. Außerdem wird so auch der Vektor eines Tokens trainiert, das als *Eingabe*
# selten vorkommt: Über den Head bekommt jedes Token an jeder Position einen Gradienten (das zeigt
# Abschnitt 4).
#
# ### Gewichtsbindung mit der Bibliothek
#
# `LanguageModelingHead.tie_embedding_weights(emb)` kopiert nichts: Die Methode macht das `weight` des Heads
# zu *demselben* `nn.Parameter`-Objekt wie `emb.weight`.

# %%
head.tie_embedding_weights(emb)
print(head)
assert head.weight is emb.weight  # one Parameter object, registered under two names
assert head.weight.data_ptr() == emb.weight.data_ptr()  # one block of memory
# z = h Eᵀ: with tying, the unembedding is the transposed embedding
assert torch.allclose(head(h), h @ emb.weight.T, atol=1e-6)

with torch.no_grad():
    emb.weight[3].zero_()  # change the embedding of token 3 ...
print("head row 3 after zeroing embedding row 3:", head.weight[3].tolist())  # ... the head sees it

# %% [markdown] en
# ### Exercise: tie a head to an embedding
#
# Write `my_tie(embedding, head)`: tie `head` (a `LanguageModelingHead`) to `embedding` in place,
# so that both use *one* `nn.Parameter`, as `tie_embedding_weights` does. The check also tells a
# copy of the values and a shared storage under two Parameter objects apart. Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Einen Head an ein Embedding binden
#
# Schreiben Sie `my_tie(embedding, head)`: Binden Sie `head` (einen `LanguageModelingHead`)
# an `embedding`, indem Sie `head` selbst verändern (in place), sodass beide *einen* `nn.Parameter` verwenden, wie es
# `tie_embedding_weights` tut. Die Prüfung unterscheidet auch eine Kopie der Werte und einen
# gemeinsamen Speicher unter zwei Parameter-Objekten. Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_tie(embedding, head):
    """Makes head's weight the very same Parameter as embedding's (in place, returns None)."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_tie(embedding, head):
    head.weight = embedding.weight  # one Parameter object, registered under two names

# %%
result = check("tie_weights", my_tie, lang=LANG)

# %% [markdown] en
# ### Counting a tied parameter once
#
# A model that ties has one tensor under two names. `model.parameters()` yields each tensor once, so
# parameter counts and optimizers see it once; `state_dict()` lists it under both names (so both
# loaders find their key). Counting parameters from a `state_dict` therefore counts a tied matrix
# twice. We check this on the package's tiny Transformer, `aptt_edu.model.GPT`, whose head is the
# library's `CombinedLMHead` and which calls `tie_embedding_weights` itself when
# `tie_weights=True`.
# %% [markdown] de
# ### Einen gebundenen Parameter nur einmal zählen
#
# Ein gebundenes Modell hat ein und denselben Tensor unter zwei Namen. `model.parameters()` liefert
# jeden Tensor nur einmal, beim Zählen der Parameter und im Optimierer erscheint er also nur einmal; `state_dict()` führt ihn unter
# beiden Namen (damit beide Seiten beim Laden ihren Schlüssel finden). Wer Parameter aus einem
# `state_dict` zählt, zählt eine gebundene Matrix deshalb doppelt. Wir prüfen das am kleinen
# Transformer des Pakets, `aptt_edu.model.GPT`: Sein Head ist der `CombinedLMHead` der Bibliothek,
# und bei `tie_weights=True` ruft er `tie_embedding_weights` selbst auf.

# %%
for tie in (False, True):
    model = GPT(GPTConfig(vocab_size=24, d_model=64, tie_weights=tie))  # the package's tiny Transformer
    n_params = sum(p.numel() for p in model.parameters())  # a shared tensor counts once
    n_state = sum(t.numel() for t in model.state_dict().values())  # listed under both names
    names = [k for k in model.state_dict() if k in ("tok_emb.weight", "head.lm_head.weight")]
    print(f"tie_weights={tie!s:5}  parameters(): {n_params:,}   state_dict(): {n_state:,}   {names}")
    assert n_params == model.num_parameters()
    if not tie:
        untied_params = n_params
assert untied_params - n_params == 24 * 64  # tying removed exactly one (V, d) matrix
assert n_state == untied_params  # the state dict still holds V*d numbers under each name

# Loading a tied state dict into a freshly built tied model keeps the single tensor.
source, fresh = GPT(GPTConfig(tie_weights=True)), GPT(GPTConfig(tie_weights=True))
fresh.load_state_dict(source.state_dict())
assert fresh.head.lm_head.weight is fresh.tok_emb.weight
assert torch.equal(fresh.tok_emb.weight, source.tok_emb.weight)

# %% [markdown] en
# One pitfall: `tie_weights=True` only records the *intent*. The head cannot reach the embedding — the
# model owns it — so the model must call `tie_embedding_weights`. If it forgets, the head warns on
# its first forward pass:
# %% [markdown] de
# Eine Falle: `tie_weights=True` hält nur die *Absicht* fest. Der Head kommt an die Embedding-Matrix
# nicht heran – sie gehört dem Modell –, also muss das Modell `tie_embedding_weights` aufrufen.
# Vergisst es das, warnt der Head beim ersten Vorwärtsdurchlauf (Forward Pass):

# %%
forgot = LanguageModelingHead(d, V, tie_weights=True)  # tie_embedding_weights() is never called
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    forgot(h)
print(caught[0].message)

# %% [markdown] en
# ### Exercise: count the parameters of a tied model
#
# Write `my_parameter_count(model)`: the number of trainable numbers in `model`, a tied matrix
# counted once (an `int`). Fill in the function below and run the `check` cell: it tests your code on several inputs and, if something is off, says which mistake it sees. The solution is folded below the stub; try first.

# %% [markdown] de
# ### Aufgabe: Die Parameter eines gebundenen Modells zählen
#
# Schreiben Sie `my_parameter_count(model)`: die Zahl der trainierbaren Zahlen in `model`, eine
# gebundene Matrix nur einmal gezählt (ein `int`). Vervollständigen Sie die Funktion unten und führen Sie die `check`-Zelle aus; sie testet Ihren Code an mehreren Eingaben und sagt, welchen Fehler sie erkennt, falls etwas nicht stimmt. Die Lösung ist unter dem Gerüst eingeklappt; versuchen Sie es zuerst selbst.

# %%
def my_parameter_count(model):
    """The number of trainable numbers in model, a tied matrix counted once."""
    raise NotImplementedError  # your code here

# %% tags=["solution"]
def my_parameter_count(model):
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared one once

# %%
result = check("parameter_count", my_parameter_count, lang=LANG)

# %% [markdown] en
# ## 2. What tying saves: the design note's claims, recomputed
#
# Tying removes exactly one $V \times d$ matrix. The design note states two numbers for
# $V$ = 50,000 and $d$ = 2048. Neither says for which model it holds, so we compute that.
#
# ### Claim 1: "~4 % fewer parameters"
#
# If the untied model has $N$ parameters, tying saves the fraction $Vd/N$. Setting that to 4 %
# fixes $N$:
#
# $$\frac{V d}{N} = 0.04 \quad\Longrightarrow\quad N = \frac{V d}{0.04}.$$
# %% [markdown] de
# ## 2. Was die Bindung spart: die Behauptungen der Entwurfsnotiz nachgerechnet
#
# Die Gewichtsbindung entfernt genau eine $V \times d$-Matrix. Die Entwurfsnotiz nennt zwei Zahlen
# für $V$ = 50.000 und $d$ = 2048. Keine der beiden sagt, für welches Modell sie gilt – das rechnen
# wir aus.
#
# ### Behauptung 1: „~4 % weniger Parameter“
#
# Hat das ungebundene Modell $N$ Parameter, spart die Bindung den Anteil $Vd/N$. Setzt man den auf
# 4 %, liegt $N$ fest:
#
# $$\frac{V d}{N} = 0{,}04 \quad\Longrightarrow\quad N = \frac{V d}{0{,}04}.$$

# %%
V_seed, d_seed = 50_000, 2048
saved = V_seed * d_seed  # parameters removed by tying: one (V, d) matrix
N_untied = saved / 0.04  # N = V·d / 0.04
print(f"V*d = {saved:,} parameters ({saved / 1e6:.1f} M)")
print(f"'4% fewer' holds for an untied model of N = {N_untied / 1e9:.2f} B parameters "
      f"(tied: {(N_untied - saved) / 1e9:.4f} B)")
assert saved == 102_400_000 and abs(N_untied - 2.56e9) < 1

# %% [markdown] en
# How deep is such a model? The library's `Block` (pre-norm attention + MLP) has $12d^2 + 2d$
# parameters. Building it on PyTorch's `meta` device gives the count without allocating memory, so we
# can ask at $d$ = 2048 directly. The untied model is then embedding + head + $L$ blocks + a final
# norm, $N(L) = 2Vd + L\,(12d^2 + 2d) + d$.
# %% [markdown] de
# Wie tief ist so ein Modell? Der `Block` der Bibliothek (Pre-Norm-Attention + MLP) hat
# $12d^2 + 2d$ Parameter. Auf PyTorchs `meta`-Gerät gebaut, liefert er die Zahl, ohne Speicher zu
# belegen – wir können also direkt bei $d$ = 2048 nachfragen. Das ungebundene Modell besteht dann
# aus Embedding, Head, $L$ Blöcken und einer abschließenden Normalisierungsschicht: $N(L) = 2Vd + L\,(12d^2 + 2d) + d$.

# %%
with torch.device("meta"):  # shapes only, no memory
    block_params = sum(p.numel() for p in Block(d_seed, n_heads=16).parameters())
# qkv 3d² + attention proj d² + MLP 8d² + two RMSNorm gains 2d
assert block_params == 12 * d_seed**2 + 2 * d_seed
print(f"one Block(d=2048): {block_params:,} parameters")


def untied_total(n_layers: int | float) -> float:
    """$N(L) = 2Vd + L(12d^2 + 2d) + d$ for the design note's V and d."""
    return 2 * saved + n_layers * block_params + d_seed


L_4pct = (N_untied - 2 * saved - d_seed) / block_params
print(f"V*d is 4% of the untied total at L = {L_4pct:.1f} blocks")
for n_layers in (12, 16, 24, 47):
    print(f"  L = {n_layers:2d}: N = {untied_total(n_layers) / 1e9:.2f} B, "
          f"tying saves {saved / untied_total(n_layers):.1%}")
assert abs(saved / untied_total(L_4pct) - 0.04) < 1e-12

# %%
layers = torch.arange(1, 65)
share = saved / untied_total(layers.double())
plt.figure(figsize=(6.4, 3.6))
plt.plot(layers, 100 * share, label=r"$Vd\,/\,N(L)$, $V$=50k, $d$=2048")
plt.axhline(4.0, color="gray", linestyle="--", label="design note: 4 %")
plt.axvline(L_4pct, color="gray", linestyle=":", label=f"L = {L_4pct:.1f}")
plt.xlabel("Transformer blocks $L$")
plt.ylabel("parameters saved by tying (%)")
plt.title("The saving shrinks as the model gets deeper")
plt.legend()
plt.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown] en
# *Figure:* the share of parameters that tying saves, $Vd / N(L)$ for $V$ = 50k and $d$ = 2048,
# against the number of Transformer blocks $L$. It falls as the model gets deeper and crosses the
# design note's 4 % (dashed) at the $L$ marked by the dotted line.
# %% [markdown] de
# *Abbildung:* der Anteil der Parameter, den die Gewichtsbindung spart, $Vd / N(L)$ für $V$ = 50k
# und $d$ = 2048, über der Zahl der Transformer-Blöcke $L$. Er sinkt, je tiefer das Modell wird, und
# schneidet die gestrichelte 4-%-Linie der Entwurfsnotiz (`design note: 4 %`) bei dem $L$, das die
# gepunktete Linie markiert.

# %% [markdown] en
# So claim 1 is right for one model size: an untied model of about 2.56 B parameters — at width 2048
# about 47 of these blocks. For a shallower model of the same width the saving is much larger (12.7 %
# at 12 blocks), for a deeper or wider one smaller. "4 %" is not a property of tying, it is
# a property of one model.
#
# ### Claim 2: "Main Head 400 MB"
#
# The head's weights are $V d$ numbers. Their size depends on the number format:
# %% [markdown] de
# Behauptung 1 stimmt also für genau eine Modellgröße: ein ungebundenes Modell mit etwa 2,56 Mrd.
# Parametern – bei Breite 2048 rund 47 dieser Blöcke. Bei einem flacheren Modell gleicher Breite
# spart die Bindung viel mehr (12,7 % bei 12 Blöcken), bei einem tieferen oder breiteren
# weniger. „4 %“ ist keine Eigenschaft der Gewichtsbindung, sondern eines bestimmten Modells.
#
# ### Behauptung 2: „Main Head 400 MB“
#
# Die Gewichte des Heads sind $V d$ Zahlen. Wie viel Speicher das ist, hängt vom Zahlenformat ab:

# %%
for dtype in (torch.float32, torch.bfloat16):
    size = saved * torch.empty((), dtype=dtype).element_size()  # bytes
    print(f"head weights in {dtype!s:15}: {size / 1e6:6.1f} MB = {size / 2**20:6.1f} MiB")
assert saved * 4 == 409_600_000 and saved * 2 == 204_800_000

# %% [markdown] en
# "400 MB" is the fp32 weight matrix alone, rounded: 409.6 MB (390.6 MiB). In bf16, the format
# large models are usually trained and served in, it is half that. During training the weights are
# the smallest part of what the head keeps in memory. Its gradient has the weights' shape, and AdamW
# keeps two more tensors of that shape (first and second moment). We measure that on a small head
# rather than assume it:
# %% [markdown] de
# „400 MB“ ist allein die fp32-Gewichtsmatrix, gerundet: 409,6 MB (390,6 MiB). In bf16, dem Format,
# in dem große Modelle meist trainiert und betrieben werden, ist es die Hälfte. Im Training sind die
# Gewichte aber der kleinste Posten dessen, was der Head im Speicher hält. Sein Gradient hat die Form
# der Gewichte, und AdamW hält zwei weitere Tensoren dieser Form (erstes und zweites Moment). Das
# messen wir an einem kleinen Head, statt es anzunehmen:

# %%
def nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


small = LanguageModelingHead(d_model=32, vocab_size=100)
opt = torch.optim.AdamW(small.parameters(), lr=1e-3)
small(torch.randn(1, 4, 32)).square().mean().backward()
opt.step()
weight_b = nbytes(small.weight)
grad_b = nbytes(small.weight.grad)
adam_b = sum(nbytes(v) for v in opt.state[small.weight].values() if v.dim() > 0)  # moments only
print(f"per fp32 weight byte: gradient {grad_b / weight_b:.0f}x, AdamW moments {adam_b / weight_b:.0f}x")
assert grad_b == weight_b and adam_b == 2 * weight_b

head_train_bytes = saved * 4 * (1 + 1 + 2)  # weights + gradient + two moments, all fp32
print(f"design-note head in fp32 training with AdamW: {head_train_bytes / 1e9:.2f} GB")

# %% [markdown] en
# ### What tying does not save: the logits and their gradient
#
# The head's largest cost is not a parameter at all. For a batch of $B$ sequences of length $T$ it
# produces a logits tensor of shape $(B, T, V)$, and the backward pass produces a gradient of the
# same shape. Tied or untied, these are the same size: tying shares the *weights*, not the
# activations. Again measured on a small example first, then scaled to the design note's $V$:
# %% [markdown] de
# ### Was die Bindung nicht spart: die Logits und ihr Gradient
#
# Der größte Posten des Heads ist gar kein Parameter. Für einen Batch aus $B$ Sequenzen der Länge
# $T$ erzeugt er einen Logits-Tensor der Form $(B, T, V)$, und der Rückwärtsdurchlauf (Backward Pass)
# einen Gradienten derselben Form. Ob gebunden oder nicht, ihre Größe bleibt dieselbe: Die Bindung teilt die *Gewichte*,
# nicht die Aktivierungen. Wieder erst an einem kleinen Beispiel gemessen, dann auf das $V$ der
# Entwurfsnotiz hochgerechnet:

# %%
B, T, V_small = 2, 8, 100
ids = torch.randint(0, V_small, (B, T))
_, labels = shift_labels(ids)  # (B, T), last position -100
hidden = torch.randn(B, T, 32)
z = small(hidden)  # (B, T, V)
z.retain_grad()
LanguageModelingLoss(V_small)(z, labels).backward()
print(f"logits {tuple(z.shape)}: {nbytes(z)} B;  their gradient {tuple(z.grad.shape)}: {nbytes(z.grad)} B")
assert nbytes(z) == nbytes(z.grad) == B * T * V_small * 4

B_ex, T_ex = 8, 2048  # an example batch of 16,384 tokens
logit_bytes = B_ex * T_ex * V_seed * 4  # fp32 logits, B·T·V·4 bytes
print(f"design-note V, B={B_ex}, T={T_ex}: logits {logit_bytes / 1e9:.2f} GB + gradient {logit_bytes / 1e9:.2f} GB "
      f"= {2 * logit_bytes / (saved * 4):.0f}x the fp32 head weights")

# %% [markdown] en
# With only 16,384 tokens in the batch, logits plus gradient alone take 16 times the memory of the head's
# fp32 weights — and that grows with every token in the batch, while the weights stay fixed. This is
# why memory-efficient LM-head losses (Liger Kernel's fused linear cross-entropy, Apple's Cut
# Cross-Entropy) never materialise the full logits: Cut Cross-Entropy reports shrinking the loss
# computation of Gemma 2 (2B) from 24 GB to 1 MB. This package's version of the idea is
# `aptt_edu.loss.linear_cross_entropy`, which walks over the tokens in chunks. Tying, in contrast,
# saves $V d$ parameters and nothing else.
# %% [markdown] de
# Schon bei 16.384 Tokens im Batch brauchen Logits und Gradient allein 16-mal so viel Speicher wie die
# fp32-Gewichte des Heads – und das wächst mit jedem Token im Batch, während die Gewichte gleich
# bleiben. Deshalb erzeugen speichersparende LM-Head-Verluste (die Fused Linear Cross-Entropy
# von Liger Kernel, Apples Cut Cross-Entropy) die Logits nie vollständig: Die Autoren von Cut
# Cross-Entropy berichten für Gemma 2 (2B), dass der Speicherbedarf der Verlustberechnung von 24 GB auf 1 MB sinkt. Im Paket
# steckt diese Idee in `aptt_edu.loss.linear_cross_entropy`, das die Tokens blockweise (chunked)
# abarbeitet. Die Gewichtsbindung dagegen spart $V d$ Parameter und sonst nichts.

# %% [markdown] en
# ## 3. Who ties? Published configurations
#
# Hugging Face configurations state it in the field `tie_word_embeddings` (where a file omits it,
# the model class's default applies). The table below is data in a code cell, with a source per
# row. Total
# parameter counts are either **cited** from the model's report or model card, or **computed** from
# the configuration with the two counting functions in the next cell; we first check those functions
# against counts that are published.
# %% [markdown] de
# ## 3. Wer nutzt Gewichtsbindung? Veröffentlichte Konfigurationen
#
# Hugging-Face-Konfigurationen geben das im Feld `tie_word_embeddings` an (fehlt es in der Datei,
# gilt der Standardwert der Modellklasse). Die Tabelle steht als Daten in einer Code-Zelle, mit
# einer Quelle pro Zeile. Die Gesamtparameterzahlen sind entweder aus dem technischen Bericht oder der Model Card **zitiert** oder mit
# den beiden Zählfunktionen der nächsten Zelle aus der Konfiguration **berechnet**; diese Funktionen
# prüfen wir zuerst an veröffentlichten Zahlen.

# %%
def gpt2_params(V: int, d: int, n_layers: int, n_positions: int) -> int:
    """GPT-2 (tied head): token + position embeddings, blocks with biases and LayerNorms, final LN."""
    block = (
        2 * d  # ln_1 (gain, bias)
        + d * 3 * d + 3 * d  # attn.c_attn (qkv)
        + d * d + d  # attn.c_proj
        + 2 * d  # ln_2
        + d * 4 * d + 4 * d  # mlp.c_fc
        + 4 * d * d + d  # mlp.c_proj
    )
    return V * d + n_positions * d + n_layers * block + 2 * d


def llama_params(V: int, d: int, n_layers: int, n_heads: int, n_kv_heads: int,
                 head_dim: int, d_ff: int, tied: bool) -> int:
    """Llama/Gemma family: no biases, grouped-query attention, gated MLP, two RMSNorms per block."""
    attn = d * n_heads * head_dim + 2 * d * n_kv_heads * head_dim + n_heads * head_dim * d  # q, k, v, o
    mlp = 3 * d * d_ff  # gate, up, down
    return (1 if tied else 2) * V * d + n_layers * (attn + mlp + 2 * d) + d  # + final norm


# Check 1: Gemma 2B (config: d=2048, 18 layers, 8 heads, 1 KV head, head_dim 256, d_ff 16384);
# its report's Table 2 lists 1,981,884,416 non-embedding parameters.
assert llama_params(0, 2048, 18, 8, 1, 256, 16384, tied=True) == 1_981_884_416
# Check 2: GPT-2 small is known as the 124M model.
print(f"GPT-2 small computed: {gpt2_params(50257, 768, 12, 1024):,}")
assert round(gpt2_params(50257, 768, 12, 1024) / 1e6) == 124

# %%
SOURCES = {
    "gpt2": "transformers configuration_gpt2.py defaults (= openai-community/gpt2; "
            "GPT2LMHeadModel: 'weights tied to the input embeddings') "
            "https://github.com/huggingface/transformers/blob/main/src/transformers/models/gpt2/configuration_gpt2.py",
    "llama2": "meta-llama/Llama-2-7b-hf config.json, copy: "
              "https://huggingface.co/TheBloke/Llama-2-7B-fp16/blob/main/config.json",
    "llama3": "meta-llama/Meta-Llama-3-8B config.json, copy: "
              "https://huggingface.co/jerryzh168/llama3-8B/blob/main/config.json",
    "llama32": "meta-llama/Llama-3.2-1B config.json, copy: "
               "https://huggingface.co/Emm9625/Llama-3.2-1B-chatml/blob/main/config.json; model card "
               "'1B (1.23B)', 'Shared Embeddings: Yes'",
    "gemma": "Gemma report, arXiv:2403.08295, Table 1 (vocab 256128), Table 2 (parameter counts), "
             "sec. 2 ('share embeddings across our inputs and outputs'); transformers GemmaConfig "
             "tie_word_embeddings=True",
    "dsv3": "DeepSeek-V3 report, arXiv:2412.19437, sec. 4.2 ('671B total parameters'); "
            "inference/configs/config_671B.json (vocab 129280, dim 7168); HF config "
            "tie_word_embeddings=false; README_WEIGHTS.md: separate 0.9B embedding and 0.9B head",
}

MODELS = [  # V, d and tying from the published configuration; total: (count, "cited" | "computed")
    dict(model="GPT-2 small", V=50257, d=768, tied=True,
         total=(gpt2_params(50257, 768, 12, 1024), "computed"), src="gpt2"),
    dict(model="Llama 2 7B", V=32000, d=4096, tied=False,
         total=(llama_params(32000, 4096, 32, 32, 32, 128, 11008, tied=False), "computed"), src="llama2"),
    dict(model="Llama 3 8B", V=128256, d=4096, tied=False,
         total=(llama_params(128256, 4096, 32, 32, 8, 128, 14336, tied=False), "computed"), src="llama3"),
    dict(model="Llama 3.2 1B", V=128256, d=2048, tied=True,
         total=(llama_params(128256, 2048, 16, 32, 8, 64, 8192, tied=True), "computed"), src="llama32"),
    dict(model="Gemma 2B", V=256128, d=2048, tied=True,
         total=(524_550_144 + 1_981_884_416, "cited"), src="gemma"),
    dict(model="Gemma 7B", V=256128, d=3072, tied=True,
         total=(786_825_216 + 7_751_248_896, "cited"), src="gemma"),
    dict(model="DeepSeek-V3", V=129280, d=7168, tied=False,
         total=(671e9, "cited"), src="dsv3"),
]

# The Llama 3.2 1B model card says 1.23B; our count from its config agrees to 0.01 B.
assert abs(MODELS[3]["total"][0] / 1e9 - 1.23) < 0.01
# Gemma's embedding count in its Table 2 is exactly V*d with V = 256128.
assert 256128 * 2048 == 524_550_144 and 256128 * 3072 == 786_825_216

print(f"{'model':13} {'V':>7} {'d':>5} {'tied':>5} {'total':>10} {'(how)':10} {'V*d':>7} "
      f"{'V*d/total':>9} {'vocab matrices/total':>20}")
for m in MODELS:
    n, how = m["total"]
    vd = m["V"] * m["d"]
    n_mat = 1 if m["tied"] else 2  # tied: one (V, d) matrix; untied: embedding + head
    print(f"{m['model']:13} {m['V']:7d} {m['d']:5d} {m['tied']!s:>5} {n / 1e9:8.3f} B {how:10} "
          f"{vd / 1e6:5.1f} M {vd / n:9.2%} {n_mat * vd / n:20.2%}")
print()
for key, text in SOURCES.items():
    print(f"[{key}] {text}")

# %% [markdown] en
# What the table shows:
#
# * **Small models tie.** In GPT-2 small the one vocabulary matrix is 31 % of the model, in
#   Llama 3.2 1B and in Gemma 2B (vocabulary of 256k) about 21 %. Untying would add that much again.
# * **Large models mostly do not.** In Llama 2 7B a second $V \times d$ matrix costs 2 % of the
#   model, in Llama 3 8B 6.5 %, and buys a head that is free to differ from the embedding. In
#   DeepSeek-V3 both vocabulary matrices together are 0.28 % of its 671 B parameters.
# * **The share guides the choice, it does not dictate it.** Llama 3 8B is untied and Llama 3.2 1B,
#   with the same vocabulary, is tied; but Gemma 7B ties at 9.2 %, a larger share than Llama 3 8B's
#   untied 6.5 % — its 256k vocabulary makes the matrix large even in a 7B-class model.
#
# DeepSeek-V3 shares its embedding and output head in a different sense: between the main model and
# its multi-token-prediction module (report §2.2, §3.2.3), not between input and output. That is the
# subject of the MTP notebook.
# %% [markdown] de
# Was die Tabelle zeigt:
#
# * **Kleine Modelle binden ihre Gewichte.** Bei GPT-2 small macht die eine Vokabular-Matrix 31 % des Modells aus,
#   bei Llama 3.2 1B und Gemma 2B (Vokabular von 256k) etwa 21 %. Ohne Bindung käme dieser Anteil
#   noch einmal hinzu.
# * **Große Modelle binden ihre Gewichte meist nicht.** Bei Llama 2 7B kostet eine zweite $V \times d$-Matrix 2 %
#   des Modells, bei Llama 3 8B 6,5 %, und dafür bekommt man einen Head, der sich unabhängig vom
#   Embedding entwickeln darf. Bei DeepSeek-V3 machen beide Vokabular-Matrizen zusammen 0,28 % der
#   671 Mrd. Parameter aus.
# * **Der Anteil lenkt die Entscheidung, er erzwingt sie nicht.** Llama 3 8B ist ungebunden, Llama
#   3.2 1B mit demselben Vokabular gebunden; Gemma 7B bindet seine Gewichte aber bei 9,2 %, also bei einem größeren
#   Anteil als die 6,5 % des ungebundenen Llama 3 8B – das 256k-Vokabular macht die Matrix auch in
#   einem Modell der 7B-Klasse groß.
#
# DeepSeek-V3 teilt Embedding und Ausgabeschicht in einem anderen Sinn: zwischen Hauptmodell und
# Multi-Token-Prediction-Modul (Bericht §2.2, §3.2.3), nicht zwischen Ein- und Ausgabe. Darum geht es
# im MTP-Notebook.

# %%
share_of = {m["model"]: (1 if m["tied"] else 2) * m["V"] * m["d"] / m["total"][0] for m in MODELS}
assert round(share_of["GPT-2 small"], 2) == 0.31
assert round(share_of["Llama 3.2 1B"], 2) == 0.21 and round(share_of["Gemma 2B"], 2) == 0.21
one_matrix = {m["model"]: m["V"] * m["d"] / m["total"][0] for m in MODELS}
assert round(one_matrix["Llama 2 7B"], 2) == 0.02 and round(one_matrix["Llama 3 8B"], 3) == 0.065
assert round(share_of["DeepSeek-V3"], 4) == 0.0028 and round(share_of["Gemma 7B"], 3) == 0.092

# %% [markdown] en
# ## 4. One tensor, two gradients
#
# A tied matrix is used twice in the forward pass, so the backward pass sends it two gradients, and
# autograd adds them into the one `.grad`. We derive both contributions by hand:
#
# * **Head.** With $p_i = \mathrm{softmax}(z_i)$ and the mean cross-entropy over $N$ valid
#   positions, the gradient of the logits is $(p_i - \mathrm{onehot}(y_i)) / N$, and since
#   $z_i = h_i W^\top$,
#
#   $$\frac{\partial \mathcal{L}}{\partial W} = \sum_i \Big(\frac{\partial \mathcal{L}}{\partial z_i}\Big)^{\!\top} h_i .$$
#
#   This is **dense**: row $v$ gets $(p_{i,v} - [v = y_i])\,h_i / N$ from every position $i$, and
#   $p_{i,v} > 0$ for every token.
# * **Embedding.** The lookup $x_i = E[t_i]$ copies a row, so its gradient is added back into that
#   row:
#
#   $$\frac{\partial \mathcal{L}}{\partial E_t} = \sum_{i:\ t_i = t} \frac{\partial \mathcal{L}}{\partial x_i} .$$
#
#   This is **sparse**: rows of tokens that do not occur in the input get nothing.
#
# As a stand-in for the Transformer we use $h_i = \tanh(x_i A)$ with a fixed matrix $A$.
# %% [markdown] de
# ## 4. Ein Tensor, zwei Gradienten
#
# Eine gebundene Matrix wird im Vorwärtsdurchlauf zweimal verwendet, also schickt ihr der
# Rückwärtsdurchlauf zwei Gradienten, und Autograd addiert beide in das eine `.grad`. Wir leiten
# beide Beiträge von Hand her:
#
# * **Head.** Mit $p_i = \mathrm{softmax}(z_i)$ und der mittleren Kreuzentropie über $N$ gültige
#   Positionen ist der Gradient der Logits $(p_i - \mathrm{onehot}(y_i)) / N$, und wegen
#   $z_i = h_i W^\top$ folgt
#
#   $$\frac{\partial \mathcal{L}}{\partial W} = \sum_i \Big(\frac{\partial \mathcal{L}}{\partial z_i}\Big)^{\!\top} h_i .$$
#
#   Dieser Gradient ist **dicht**: Zeile $v$ bekommt von jeder Position $i$ den Beitrag
#   $(p_{i,v} - [v = y_i])\,h_i / N$, und $p_{i,v} > 0$ gilt für jedes Token.
# * **Embedding.** Das Nachschlagen $x_i = E[t_i]$ kopiert eine Zeile, also wird ihr Gradient in
#   genau diese Zeile zurückaddiert:
#
#   $$\frac{\partial \mathcal{L}}{\partial E_t} = \sum_{i:\ t_i = t} \frac{\partial \mathcal{L}}{\partial x_i} .$$
#
#   Dieser Gradient ist **dünn besetzt**: Zeilen von Tokens, die in der Eingabe nicht vorkommen,
#   bekommen nichts.
#
# Als Ersatz für den Transformer nehmen wir $h_i = \tanh(x_i A)$ mit einer festen Matrix $A$.

# %%
V, d = 12, 6
ids = torch.tensor([[1, 4, 4, 7, 2, 9, 1],
                    [3, 1, 4, 1, 5, 9, 2]])  # (B, T); tokens 0, 6, 8, 10, 11 never occur
inputs, labels = shift_labels(ids)  # labels[b, t] = ids[b, t + 1]; last position -100
A = torch.randn(d, d) / d**0.5  # fixed stand-in for the Transformer
loss_fn = LanguageModelingLoss(V)

# Tied: one Parameter, used by the embedding and by the head.
emb = nn.Embedding(V, d)
head = LanguageModelingHead(d, V, tie_weights=True)
head.tie_embedding_weights(emb)
x = emb(inputs)  # (B, T, d)
h = torch.tanh(x @ A)  # (B, T, d)
z = head(h)  # (B, T, V)
x.retain_grad()
z.retain_grad()
loss_fn(z, labels).backward()
tied_grad = emb.weight.grad  # (V, d), the only gradient there is

# By hand, from the retained gradients of the logits and of the embedding output:
valid = labels != -100
N = valid.sum()
p = z.detach().softmax(-1)  # (B, T, V)
dz = (p - F.one_hot(labels.clamp(min=0), V)) * valid[..., None] / N  # (p − onehot(y)) / N
assert torch.allclose(dz, z.grad, atol=1e-7)
head_part = dz.reshape(-1, V).T @ h.detach().reshape(-1, d)  # (V, d): Σ_i dz_iᵀ h_i
emb_part = torch.zeros(V, d).index_add_(0, inputs.reshape(-1), x.grad.reshape(-1, d))  # (V, d)

assert torch.allclose(tied_grad, emb_part + head_part, atol=1e-6)
print("rows with an embedding gradient:", emb_part.abs().sum(1).nonzero().flatten().tolist())
print("rows with a head gradient:      ", head_part.abs().sum(1).nonzero().flatten().tolist())

# %% [markdown] en
# The same check the other way round: an **untied** copy (same initial values, two separate
# parameters) gets exactly the two parts, one in each `.grad`, and their sum is the tied gradient.
# %% [markdown] de
# Dieselbe Probe andersherum: Eine **ungebundene** Kopie (gleiche Anfangswerte, zwei getrennte
# Parameter) bekommt genau die beiden Anteile, jeden in ein eigenes `.grad`, und ihre Summe ist der
# gebundene Gradient.

# %%
emb_u = nn.Embedding(V, d)
head_u = LanguageModelingHead(d, V)  # its own weight
with torch.no_grad():
    emb_u.weight.copy_(emb.weight)
    head_u.weight.copy_(emb.weight)
loss_fn(head_u(torch.tanh(emb_u(inputs) @ A)), labels).backward()

assert torch.allclose(emb_u.weight.grad, emb_part, atol=1e-6)
assert torch.allclose(head_u.weight.grad, head_part, atol=1e-6)
assert torch.allclose(emb_u.weight.grad + head_u.weight.grad, tied_grad, atol=1e-6)
print(f"|grad| per row, token 0 (never an input): embedding {emb_u.weight.grad[0].norm():.4f}, "
      f"head {head_u.weight.grad[0].norm():.4f}, tied {tied_grad[0].norm():.4f}")

# %% [markdown] en
# Token 0 never occurs in the input, so its embedding row gets no gradient — untied, that row would
# not move at all. Tied, it still learns through the head, which pushes down every token that was
# not the target. This suggests (a hypothesis, not a result of the papers cited here) that tying
# should help most where many tokens are rare: small models, large vocabularies, little data.
# %% [markdown] de
# Token 0 kommt in der Eingabe nie vor, also bekommt seine Embedding-Zeile keinen Gradienten –
# ungebunden würde sich diese Zeile überhaupt nicht bewegen. Gebunden lernt sie trotzdem, über den
# Head, der jedes Token nach unten drückt, das nicht das Zieltoken war. Das legt nahe (eine
# Hypothese, kein Ergebnis der hier zitierten Arbeiten), dass die Bindung dort am meisten helfen
# sollte, wo viele Tokens selten sind: bei kleinen Modellen, großen Vokabularen und wenig Daten.

# %% [markdown] en
# ## 5. Tied vs untied training on the toy source
#
# Finally the whole model. `aptt_edu.training.train` trains the package's tiny Transformer (`GPT`, one
# block, $d$ = 64) on the toy language of `aptt_edu.data` (notebook 00): a random order-2 Markov chain over
# $V$ = 16 letters whose entropy rate $H$ — the lowest loss *any* model can reach — is computed
# exactly. We train it twice from the same seed, on the same data and batches, once with
# `tie_weights=False` and once with `tie_weights=True`; nothing else differs.
# %% [markdown] de
# ## 5. Training mit und ohne Gewichtsbindung auf der Spielzeugsprache
#
# Zum Schluss das ganze Modell. `aptt_edu.training.train` trainiert den kleinen Transformer des Pakets
# (`GPT`, ein Block, $d$ = 64) auf der Spielzeugsprache aus `aptt_edu.data` (Notebook 00): einer zufälligen
# Markow-Kette zweiter Ordnung über $V$ = 16 Buchstaben, deren Entropierate $H$ – der kleinste
# Verlust, den *irgendein* Modell erreichen kann – exakt berechnet wird. Wir trainieren zweimal mit
# demselben Seed, denselben Daten und denselben Batches, einmal mit `tie_weights=False` (in Ausgaben und
# Legende `untied`), einmal mit `tie_weights=True` (`tied`); sonst unterscheidet sich nichts.

# %% tags=["nbval-ignore-output"]
base = TrainConfig(steps=300, progress=False)  # the library's defaults: V=16, 1 block, d=64
data = load_data(base)  # one data set for both runs
print(data.description)

start = time.perf_counter()
runs = {
    "untied": train(dataclasses.replace(base, tie_weights=False), data=data),
    "tied": train(dataclasses.replace(base, tie_weights=True), data=data),
}
train_seconds = time.perf_counter() - start
H = data.entropy_rate
for name, run in runs.items():
    print(f"{name:6}  parameters {run.n_params:,}   final validation loss {run.val_loss[-1]:.4f}"
          f"   above H: {run.val_loss[-1] - H:.4f}")
vd = data.vocab_size * base.d_model  # the one (V, d) matrix tying removes
assert runs["untied"].n_params - runs["tied"].n_params == vd
print(f"tying removes {vd:,} parameters = {vd / runs['untied'].n_params:.1%} of the untied model")

# %% tags=["nbval-ignore-output"]
print(f"both runs: {train_seconds:.1f} s; median step "
      + ", ".join(f"{name} {1e3 * run.step_time:.1f} ms" for name, run in runs.items()))

# %%
fig, (ax_full, ax_zoom) = plt.subplots(1, 2, figsize=(11, 4))
plot_loss_curves(runs, floor=H, ax=ax_full)
plot_loss_curves(runs, floor=H, ax=ax_zoom, ylim=(H - 0.05, H + 0.45), show_train=False)
ax_zoom.set_title("validation loss, zoomed onto the floor")
fig.tight_layout()
plt.show()

# %% [markdown] en
# *Figure:* left, validation loss (thick) and training loss (faint) of the tied and the untied
# model, with the floor $H$ dashed; right, the validation loss alone, zoomed onto the band from
# $H - 0.05$ to $H + 0.45$.
# %% [markdown] de
# *Abbildung:* links Validierungsverlust (kräftig) und Trainingsverlust (blass) des gebundenen
# (`tied`) und des ungebundenen Modells (`untied`), gestrichelt die Untergrenze $H$; rechts nur der
# Validierungsverlust, vergrößert auf den Bereich von $H - 0{,}05$ bis $H + 0{,}45$.

# %% tags=["nbval-ignore-output"]
gap = [u - t for u, t in zip(runs["untied"].val_loss, runs["tied"].val_loss, strict=True)]
i_max = max(range(len(gap)), key=gap.__getitem__)
print("validation steps:        ", runs["tied"].val_step)
print("untied - tied (nats):    ", [round(g, 3) for g in gap])
print(f"largest lead of the tied model: {gap[i_max]:.4f} nats at step {runs['tied'].val_step[i_max]}")
# what this one seeded run shows (reported, not asserted: another seed may differ)
print(f"this run: tied ahead by > 0.1 nats in mid-training: {gap[i_max] > 0.1}; "
      f"still ahead at the end: {gap[-1] > 0}")

# %% [markdown] en
# Both runs end close to the floor and close to each other (the first cell of this section prints
# by how much). The tied model, with 1.9 % fewer parameters, is never clearly behind: in the middle
# of training it is well ahead — by 0.27 nats at step 75 — and it still ends slightly lower. With
# such a small share the difference cannot come from the parameter count. What differs is how the
# shared matrix learns: tied, every row gets the head's dense gradient on top of the embedding's
# sparse one (section 4). A plausible explanation — this run does not prove it — is that the input
# vectors thereby get useful structure sooner.
#
# One seed is one observation. Change `seed` in `TrainConfig` (it draws a new language, new data
# and a new initialisation) to see how stable the picture is. And keep the scale in mind: in this
# toy model the matrix is 1.9 % of the parameters, in GPT-2 small it is 31 %.
# %% [markdown] de
# Beide Läufe enden nahe an der Untergrenze und nahe beieinander (wie nahe, gibt die erste Zelle
# dieses Abschnitts aus). Das gebundene Modell hat 1,9 % weniger Parameter und liegt trotzdem nie
# deutlich zurück: Mitten im Training ist es klar vorn – um 0,27 nat bei Schritt 75 – und auch am
# Ende noch knapp besser. Bei so einem kleinen Anteil kann der Unterschied nicht an der Parameterzahl
# liegen. Der Unterschied liegt darin, wie die geteilte Matrix lernt: Gebunden bekommt jede Zeile zusätzlich zum
# dünn besetzten Gradienten des Embeddings den dichten Gradienten des Heads (Abschnitt 4). Eine
# plausible Erklärung – die dieser Lauf nicht beweist – ist, dass die Eingabevektoren dadurch
# früher brauchbare Struktur bekommen.
#
# Ein Seed ist eine einzelne Beobachtung. Ändern Sie `seed` in `TrainConfig` (das zieht eine neue
# Sprache, neue Daten und eine neue Initialisierung), um zu sehen, wie stabil das Bild ist. Und
# behalten Sie die Größenordnung im Blick: In diesem Spielzeugmodell macht die Matrix 1,9 % der
# Parameter aus, bei GPT-2 small 31 %.


# %% [markdown] en
# ## Summary
#
# * Embedding and head are both $V \times d$; tied, the unembedding is the transposed embedding and
#   $z_v = h \cdot e_v$. The library's `tie_embedding_weights` makes them one `nn.Parameter`;
#   `parameters()` counts it once, `state_dict()` lists it twice.
# * Tying saves exactly $V d$ parameters. For $V$ = 50k, $d$ = 2048 that is 102.4 M, which is "~4 %"
#   only for an untied model of about 2.56 B parameters. The head's fp32 weights are 409.6 MB
#   (204.8 MB in bf16) — but logits and their gradient, $2 \cdot B T V$ numbers, cost more, and tying
#   does not touch them.
# * GPT-2 small, Llama 3.2 1B and Gemma 2B tie, where the vocabulary matrix is a fifth to a third
#   of the model; Gemma 7B ties too, at 9 %, because of its 256k vocabulary; Llama 2 7B, Llama 3 8B
#   and DeepSeek-V3 do not.
# * Both uses send their gradient into the one tensor: sparse rows from the embedding, dense rows
#   from the head, added.
# * On the toy language the tied tiny Transformer, with 1.9 % fewer parameters, learns faster in
#   mid-training and ends slightly lower than the untied one; both end close to the entropy floor.
# %% [markdown] de
# ## Zusammenfassung
#
# * Embedding und Head sind beide $V \times d$; gebunden ist die Ausgabematrix die transponierte
#   Embedding-Matrix, und $z_v = h \cdot e_v$. `tie_embedding_weights` aus der Bibliothek macht
#   beide zu einem `nn.Parameter`; `parameters()` zählt ihn einmal, `state_dict()` führt ihn doppelt.
# * Die Bindung spart genau $V d$ Parameter. Für $V$ = 50k, $d$ = 2048 sind das 102,4 Mio., und das
#   sind nur bei einem ungebundenen Modell mit etwa 2,56 Mrd. Parametern „~4 %“. Die fp32-Gewichte
#   des Heads belegen 409,6 MB (204,8 MB in bf16) – Logits und ihr Gradient, $2 \cdot B T V$ Zahlen,
#   kosten aber mehr, und die lässt die Bindung unberührt.
# * GPT-2 small, Llama 3.2 1B und Gemma 2B binden, bei ihnen ist die Vokabular-Matrix ein Fünftel
#   bis ein Drittel des Modells; auch Gemma 7B bindet, bei 9 %, wegen seines Vokabulars von 256k;
#   Llama 2 7B, Llama 3 8B und DeepSeek-V3 binden nicht.
# * Beide Verwendungen schicken ihren Gradienten in den einen Tensor: dünn besetzte Zeilen vom
#   Embedding, dichte vom Head, addiert.
# * Auf der Spielzeugsprache lernt der gebundene kleine Transformer mit 1,9 % weniger Parametern
#   mitten im Training schneller und endet knapp unter dem ungebundenen; beide enden nahe an der
#   Entropie-Untergrenze.

# %% [markdown] en
# ## Check your understanding
#
# 1. Why does tying fit shape-wise, and what does the logit $z_v$ become?
#    <details><summary>Answer</summary>Embedding and head are both V × d. With W = E the logit is z_v = h · e_v, the dot product of the hidden state with token v's input vector.</details>
# 2. After `head.weight = emb.weight`, how often does `model.parameters()` yield the matrix, and how often does `state_dict()` list it?
#    <details><summary>Answer</summary>parameters() yields it once (one Parameter object); state_dict() lists it under both names.</details>
# 3. Tying saves V·d parameters. Why is that about a third of GPT-2 small but only about 1.5 % of a 7B model?
#    <details><summary>Answer</summary>V·d grows only with d, while the blocks grow with L·12d²: a large model has many wide blocks, so the one vocabulary matrix is a small share.</details>
# 4. A token never occurs as an input in the training data. Does its row of a tied matrix get a gradient?
#    <details><summary>Answer</summary>Yes: through the head. Every position's softmax puts probability p_v on every token, so the gradient p − onehot(y) reaches every row (notebook 00).</details>
# 5. Does tying reduce the memory of the logits?
#    <details><summary>Answer</summary>No. The logits (B, T, V) and their gradient are activations; tying shares weights only.</details>

# %% [markdown] de
# ## Verständnisfragen
#
# 1. Warum passt die Bindung von den Formen her, und was wird aus dem Logit $z_v$?
#    <details><summary>Antwort</summary>Embedding und Head sind beide V × d. Mit W = E ist der Logit z_v = h · e_v, das Skalarprodukt des Hidden States mit dem Eingabevektor von Token v.</details>
# 2. Wie oft liefert `model.parameters()` die Matrix nach `head.weight = emb.weight`, und wie oft führt `state_dict()` sie auf?
#    <details><summary>Antwort</summary>parameters() liefert sie einmal (ein Parameter-Objekt); state_dict() führt sie unter beiden Namen.</details>
# 3. Die Bindung spart V·d Parameter. Warum ist das bei GPT-2 small etwa ein Drittel, bei einem 7B-Modell aber nur etwa 1,5 %?
#    <details><summary>Antwort</summary>V·d wächst nur mit d, die Blöcke wachsen mit L·12d²: Ein großes Modell hat viele breite Blöcke, die eine Vokabular-Matrix ist dort ein kleiner Anteil.</details>
# 4. Ein Token kommt in den Trainingsdaten nie als Eingabe vor. Bekommt seine Zeile in einer gebundenen Matrix einen Gradienten?
#    <details><summary>Antwort</summary>Ja, über den Head. Die Softmax jeder Position gibt jedem Token eine Wahrscheinlichkeit p_v, der Gradient p − onehot(y) erreicht also jede Zeile (Notebook 00).</details>
# 5. Verringert die Bindung den Speicherbedarf der Logits?
#    <details><summary>Antwort</summary>Nein. Die Logits (B, T, V) und ihr Gradient sind Aktivierungen; die Bindung teilt nur Gewichte.</details>

# %% [markdown] en
# **References.** Press, O. & Wolf, L. (2017). *Using the Output Embedding to Improve
# Language Models.* EACL 2017, https://aclanthology.org/E17-2025 · Inan, H., Khosravi, K. & Socher, R.
# (2017). *Tying Word Vectors and Word Classifiers: A Loss Framework for
# Language Modeling.* ICLR 2017, https://openreview.net/forum?id=r1aPbsFle
# · DeepSeek-AI (2024). *DeepSeek-V3 Technical Report.* arXiv:2412.19437 · Gemma Team (2024). *Gemma:
# Open Models Based on Gemini Research and Technology.* arXiv:2403.08295 · Wijmans, E. et al. (2024).
# *Cut Your Losses in Large-Vocabulary Language Models.* arXiv:2411.09009 · Hsu, P.-L. et al. (2024).
# *Liger Kernel.* arXiv:2410.10989
# %% [markdown] de
# **Quellen.** Press, O. & Wolf, L. (2017). *Using the Output Embedding to Improve
# Language Models.* EACL 2017, https://aclanthology.org/E17-2025 · Inan, H., Khosravi, K. & Socher, R.
# (2017). *Tying Word Vectors and Word Classifiers: A Loss Framework for
# Language Modeling.* ICLR 2017, https://openreview.net/forum?id=r1aPbsFle
# · DeepSeek-AI (2024). *DeepSeek-V3 Technical Report.* arXiv:2412.19437 · Gemma Team (2024). *Gemma:
# Open Models Based on Gemini Research and Technology.* arXiv:2403.08295 · Wijmans, E. et al. (2024).
# *Cut Your Losses in Large-Vocabulary Language Models.* arXiv:2411.09009 · Hsu, P.-L. et al. (2024).
# *Liger Kernel.* arXiv:2410.10989
