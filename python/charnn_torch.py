"""charnn models in PyTorch: the other end of `charnn export` and `charnn import`.

    from charnn_torch import load, save
    model, desc = load("shakespeare.safetensors")      # from: charnn export -m shakespeare.charnn shakespeare.safetensors
    logits, state = model(ids)                          # ids: [T, B] long -> logits [T, B, V]
    save(model, desc, "tuned.safetensors")              # then: charnn import tuned.safetensors -o tuned.charnn

The model is PyTorch's examples/word_language_model RNNModel: encoder (nn.Embedding; none for
one-hot input) -> rnn (the cell's module from CELLS: nn.RNN tanh | nn.LSTM | nn.GRU | MLSTM)
-> decoder (nn.Linear), so its
state_dict names are the tensor names in the file. Files are safetensors with the charnn
description (model config, tokenizer, vocabulary) as JSON in the metadata under "charnn" and in
a sidecar .json beside them. The `safetensors` package is used when it is installed; otherwise a
small built-in reader and writer do the same (float tensors, little-endian hosts).

Command line:
    torchrun --nproc_per_node N charnn_torch.py train MODEL.safetensors CORPUS --steps S --out OUT.safetensors
                                                                    continue training, with DistributedDataParallel (charnn_train.py)
    python charnn_torch.py tokenize MODEL.safetensors TEXT          the text's tokens and ids as the model reads them, as JSON
    python charnn_torch.py logprobs IDS.json MODEL.safetensors...   log-softmax of every position, as JSON
    python charnn_torch.py make-model OUT.safetensors --text FILE    build a character model, train it briefly, save it
"""
import argparse
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# CHARNN_TORCH_BUILTIN=1 uses the built-in reader and writer even where safetensors is installed (tests use both).
try:
    if os.environ.get("CHARNN_TORCH_BUILTIN", "") not in ("", "0"):
        raise ImportError("built-in reader requested")
    from safetensors import safe_open
    from safetensors.torch import save_file

    READER = "safetensors"
except ImportError:
    READER = "built-in"

DESCRIPTION_KIND = "charnn-torch"
LAYOUT_VERSION = 1
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


class MLSTM(nn.Module):
    """The multiplicative LSTM (Krause et al. 2016), charnn's `--model mlstm`, as a stack of layers
    shaped like nn.LSTM's interface: forward(x [T, B, D], (h, c) each [L, B, H] or None) ->
    (out [T, B, H], (h, c)). Per layer l and step:
        m = (x @ weight_mx^T) * (h_prev @ weight_mh^T)
        i, f, g, o = chunks of x @ weight_ih^T + m @ weight_hh^T + bias; c = f c_prev + i g; h = o tanh(c)
    with sigmoid i, f, o and tanh g (PyTorch's gate order, as charnn's). Dropout p on every layer's
    output but the last, in training, as nn.LSTM's `dropout`."""

    def __init__(self, input_size, hidden_size, num_layers, dropout=0.0):
        super().__init__()
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        H = hidden_size
        for l in range(num_layers):
            D = input_size if l == 0 else H
            # Registered in the order charnn's torch mapping lists them (model/cells/mlstm.ts).
            setattr(self, f"weight_ih_l{l}", nn.Parameter(torch.empty(4 * H, D)))
            setattr(self, f"weight_mx_l{l}", nn.Parameter(torch.empty(H, D)))
            setattr(self, f"weight_mh_l{l}", nn.Parameter(torch.empty(H, H)))
            setattr(self, f"weight_hh_l{l}", nn.Parameter(torch.empty(4 * H, H)))
            setattr(self, f"bias_l{l}", nn.Parameter(torch.empty(4 * H)))
        bound = 1 / H**0.5
        for w in self.parameters():
            nn.init.uniform_(w, -bound, bound)

    def forward(self, x, state=None):
        T, B, _ = x.shape
        H = self.hidden_size
        if state is None:
            zeros = x.new_zeros(self.num_layers, B, H)
            state = (zeros, zeros)
        hs, cs = [], []
        for l in range(self.num_layers):
            w_ih, w_mx, w_mh, w_hh, b = (getattr(self, f"{n}_l{l}") for n in ("weight_ih", "weight_mx", "weight_mh", "weight_hh", "bias"))
            h, c = state[0][l], state[1][l]
            xg = x @ w_ih.T + b  # [T, B, 4H]: the input side of every step at once
            xm = x @ w_mx.T  # [T, B, H]
            out = []
            for t in range(T):
                m = xm[t] * (h @ w_mh.T)
                i, f, g, o = (xg[t] + m @ w_hh.T).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                out.append(h)
            x = torch.stack(out)
            if l < self.num_layers - 1:
                x = F.dropout(x, self.dropout, self.training)
            hs.append(h)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))


# The recurrent module of each charnn cell (`model.cell`): (input size, H, L, dropout) -> module
# whose state_dict names are those charnn's cell spec maps to (src/model/cells/<cell>.ts, `torch`).
CELLS = {
    "rnn": lambda D, H, L, p: nn.RNN(D, H, L, dropout=p, nonlinearity="tanh"),
    "lstm": lambda D, H, L, p: nn.LSTM(D, H, L, dropout=p),
    "gru": lambda D, H, L, p: nn.GRU(D, H, L, dropout=p),
    "mlstm": lambda D, H, L, p: MLSTM(D, H, L, dropout=p),
}


class CharnnModel(nn.Module):
    """charnn's recurrent language model, parameter for parameter.

    Dropout sits where charnn puts it: on every layer's input except raw one-hot (the embedding
    output, and between layers through the RNN's own `dropout`) and on the top layer's output.
    """

    def __init__(self, description):
        super().__init__()
        m = description["model"]
        self.cell, self.vocab_size, self.hidden, self.layers = m["cell"], m["vocabSize"], m["hidden"], m["layers"]
        V, H, L, E, p = self.vocab_size, self.hidden, self.layers, m["embed"], m["dropout"]
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}: this charnn_torch.py knows {', '.join(CELLS)}")
        self.encoder = nn.Embedding(V, E) if E > 0 else None  # weight: [V, E]
        # The cell's module: for rnn, lstm and gru PyTorch's own (weight_ih_l{l}: [G, D],
        # weight_hh_l{l}: [G, H], bias_ih_l{l} / bias_hh_l{l}: [G]; G = 1, 4 or 3 x H); MLSTM above.
        self.rnn = CELLS[self.cell](E if E > 0 else V, H, L, p if L > 1 else 0.0)
        self.drop = nn.Dropout(p)
        self.decoder = nn.Linear(H, V)  # weight: [V, H], bias: [V]
        if m.get("tie"):
            self.decoder.weight = self.encoder.weight  # needs E = H; charnn checks it

    def forward(self, ids, state=None):
        """ids: [T, B] long. Returns logits [T, B, V] and the state to carry into the next call
        (h, or (h, c) for a cell with a memory cell; each [layers, B, H]). state=None starts from zeros, as charnn."""
        if self.encoder is not None:
            x = self.drop(self.encoder(ids))  # [T, B, E]
        else:
            x = F.one_hot(ids, self.vocab_size).to(self.decoder.weight.dtype)  # [T, B, V]
        out, state = self.rnn(x, state)  # out: [T, B, H]
        return self.decoder(self.drop(out)), state


def sidecar_path(path):
    """x.safetensors -> x.json (any other name: name + .json), as charnn export names it."""
    return path[: -len(".safetensors")] + ".json" if path.endswith(".safetensors") else path + ".json"


def load(path, description=None):
    """Read a safetensors file from charnn export (or save). Returns (model in eval mode, description).
    The description comes from `description`, else the file's metadata, else the sidecar .json."""
    tensors, metadata = read_safetensors(path)
    if description is None:
        if "charnn" in metadata:
            description = json.loads(metadata["charnn"])
        else:
            with open(sidecar_path(path), encoding="utf-8") as f:
                description = json.load(f)
    if description.get("kind") != DESCRIPTION_KIND or description.get("layout") != LAYOUT_VERSION:
        raise ValueError(f"{path}: not a charnn description of layout {LAYOUT_VERSION}")
    model = CharnnModel(description)
    model.load_state_dict(tensors, strict=True)
    return model.eval(), description


def save(model, description, path):
    """Write the model as safetensors with the description in its metadata, plus the sidecar .json
    (each atomically: a reader never sees a half-written file)."""
    description = dict(description, writer="charnn_torch.py")
    # Own float32 copies: tied weights share memory, which safetensors refuses to write twice.
    tensors = {k: v.detach().to(torch.float32).cpu().contiguous().clone() for k, v in model.state_dict().items()}
    write_safetensors(path, tensors, {"format": "pt", "charnn": json.dumps(description)})
    with _atomic(sidecar_path(path)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(description, f, indent=2)
        f.write("\n")


class _atomic:
    """`with _atomic(path) as tmp:` write tmp (same directory); it replaces path when the block succeeds."""

    def __init__(self, path):
        self.path, self.tmp = path, f"{path}.tmp-{os.getpid()}"

    def __enter__(self):
        return self.tmp

    def __exit__(self, kind, value, traceback):
        if kind is None:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


def read_safetensors(path):
    """-> ({name: float32 tensor}, metadata dict)."""
    if READER == "safetensors":
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k).to(torch.float32) for k in f.keys()}, dict(f.metadata() or {})
    _require_little_endian()
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])  # header length
    header = json.loads(data[8 : 8 + n])
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]  # relative to the end of the header
        raw = bytearray(data[8 + n + begin : 8 + n + end])  # a writable copy, which frombuffer wants
        dtype = _DTYPES[entry["dtype"]]
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"]).to(torch.float32)
    return tensors, metadata


def write_safetensors(path, tensors, metadata):
    """tensors: {name: contiguous float32 CPU tensor}; written in that order, atomically."""
    if READER == "safetensors":
        with _atomic(path) as tmp:
            save_file(tensors, tmp, metadata=metadata)
        return
    _require_little_endian()
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        blob = bytes(t.untyped_storage())  # t is a fresh contiguous copy: its storage is exactly its data
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # spaces, so the data starts 8-byte aligned
    with _atomic(path) as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)


def _require_little_endian():
    if sys.byteorder != "little":
        raise RuntimeError("the built-in safetensors reader/writer needs a little-endian host; pip install safetensors")


def log_probs(model, ids):
    """Next-token log-probabilities [T, V] for one id sequence from a zero state (B = 1)."""
    with torch.no_grad():
        logits, _ = model(torch.tensor(ids, dtype=torch.long).unsqueeze(1))  # [T, 1, V]
        return torch.log_softmax(logits[:, 0].double(), dim=-1)


def make_model(args):
    """A character-level model of the given shape, trained for a few Adam steps on a text, then saved."""
    torch.manual_seed(args.seed)
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    tokens = sorted(set(text))  # code point order, as charnn builds a character vocabulary
    model_config = {"cell": args.cell, "vocabSize": len(tokens), "hidden": args.hidden, "layers": args.layers,
                    "embed": args.embed, "dropout": args.dropout}
    if args.tie:
        model_config["tie"] = True
    description = {"kind": DESCRIPTION_KIND, "layout": LAYOUT_VERSION, "writer": "charnn_torch.py", "model": model_config,
                   "tokenizer": {"level": "char", "invalidUtf8": "error", "wordSplit": "punct"},
                   "vocabulary": {"level": "char", "tokens": tokens}}
    model = CharnnModel(description)
    ids = torch.tensor([tokens.index(c) for c in text], dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    T, B, losses = args.seq, 4, []
    model.train()
    for _ in range(args.steps):
        starts = torch.randint(0, len(ids) - T - 1, (B,))
        window = torch.stack([ids[s : s + T + 1] for s in starts.tolist()], dim=1)  # [T + 1, B]
        logits, _ = model(window[:-1])
        loss = F.cross_entropy(logits.reshape(-1, len(tokens)), window[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    save(model, description, args.out)
    print(json.dumps({"reader": READER, "first_loss": losses[0], "last_loss": losses[-1]}))


def tokenize_command(args):
    """Print {tokens, ids, unknown} for a text as the model reads it (charnn_tokens.py)."""
    import charnn_tokens

    _, desc = load(args.model)
    tok = desc["tokenizer"]
    try:
        text = charnn_tokens.read_text(args.text, tok["invalidUtf8"])
        tokens = charnn_tokens.tokenize(text, tok["level"], tok["wordSplit"], tok.get("lineEndings", "keep"))
        rule = args.unknown or ("unk" if tok["level"] == "word" else "skip")
        ids, unknown = charnn_tokens.encode(tokens, desc["vocabulary"]["tokens"], rule, args.text)
    except charnn_tokens.TextError as e:
        print(f"charnn_torch: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"tokens": tokens, "ids": ids, "unknown": unknown}, ensure_ascii=False))


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (charnn's style), exit 2."""

    def error(self, message):
        print(f"charnn_torch: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def main(argv):
    parser = _Parser(prog="charnn_torch.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tr = sub.add_parser("train", help="continue a charnn model on a corpus, on one process or many under torchrun (see charnn_train.py)")
    import charnn_train

    charnn_train.add_arguments(tr)
    tk = sub.add_parser("tokenize", help="print a text's tokens and ids as the model reads them, as one JSON line")
    tk.add_argument("model")
    tk.add_argument("text")
    tk.add_argument("--unknown", choices=["error", "skip", "unk"], help="[unk for word-level models, skip for character-level ones, as charnn eval]")
    lp = sub.add_parser("logprobs", help="print {reader, results: {model: [[log p] per position]}} as one JSON line")
    lp.add_argument("ids", help="JSON file: a list of token ids")
    lp.add_argument("models", nargs="+")
    mk = sub.add_parser("make-model", help="build, briefly train and save a character-level model")
    mk.add_argument("out")
    mk.add_argument("--text", required=True)
    mk.add_argument("--cell", choices=list(CELLS), default="lstm")
    mk.add_argument("--hidden", type=int, default=16)
    mk.add_argument("--layers", type=int, default=1)
    mk.add_argument("--embed", type=int, default=0)
    mk.add_argument("--dropout", type=float, default=0.0)
    mk.add_argument("--tie", action="store_true")
    mk.add_argument("--steps", type=int, default=20)
    mk.add_argument("--seq", type=int, default=16)
    mk.add_argument("--lr", type=float, default=0.01)
    mk.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "train":
        charnn_train.main(args)
    elif args.command == "tokenize":
        tokenize_command(args)
    elif args.command == "logprobs":
        with open(args.ids, encoding="utf-8") as f:
            ids = json.load(f)
        results = {path: log_probs(load(path)[0], ids).tolist() for path in args.models}
        print(json.dumps({"reader": READER, "results": results}))
    else:
        make_model(args)


if __name__ == "__main__":
    main(sys.argv[1:])
