"""`charnn_torch.py train`: continue a charnn model in PyTorch, on one process or many.

    torchrun --nproc_per_node 4 python/charnn_torch.py train model.safetensors corpus.txt --steps 10000 --out tuned.safetensors
    charnn import tuned.safetensors -o tuned.charnn          # then sample, eval, dump, info in charnn

The model comes from `charnn export` (or a previous run of this command); the corpus is read
with the model's own tokenizer and vocabulary (charnn_tokens.py, the same tokens charnn reads).
Training is charnn's: B streams cut from the corpus as charnn's StreamBatcher cuts them (stream
b starts at b * floor(N / B)), walked in windows of T with hidden state carried from window to
window and reset at each epoch, the loss summed over the window's T steps and averaged over the
B streams, the gradient clipped elementwise (--clip) then by global norm (--clip-norm).

Distributed: under torchrun every process (rank) takes B / world_size consecutive streams and
DistributedDataParallel averages the gradients, so a run on N processes takes the steps one
process with the same B would take (up to floating-point summation order): the processes split
the work of a step, not the data of an epoch. gloo on CPUs, NCCL on GPUs (one per process).

Checkpoints: OUT (safetensors with the charnn description: what `charnn import` reads) and,
beside it, OUT's training state `<OUT>.train.pt` (optimizer state, step, data position, the
carried state of every stream, each rank's RNG), written by rank 0 every --save-every steps and
at the end, each atomically. `--resume` continues from that state; --steps counts from the start
of the run. The optimizer starts fresh from a charnn export (which carries no optimizer state).

Output: progress on stderr (rank 0); at the end one JSON line on stdout (rank 0): steps, world
size, tokens/s, the mean loss of the first and last logged intervals, and a SHA-256 of every
rank's weights (all equal: DDP keeps the replicas identical).
"""
import argparse
import hashlib
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import charnn_torch
from charnn_tokens import TextError, encode, read_text, tokenize

STATE_FORMAT = "charnn-torch-train"
STATE_VERSION = 1
OPTIMIZERS = {
    # charnn's defaults (src/train/optimizer.ts). torch's Adagrad adds eps to the root where
    # charnn adds it under the root: the same update except for accumulators near zero.
    "adagrad": (0.1, lambda params, lr: torch.optim.Adagrad(params, lr=lr, eps=1e-8)),
    "rmsprop": (2e-3, lambda params, lr: torch.optim.RMSprop(params, lr=lr, alpha=0.95, eps=1e-8)),
    "adam": (2e-3, lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)),
    "sgd": (1.0, lambda params, lr: torch.optim.SGD(params, lr=lr)),
}


class UsageError(Exception):
    """A bad option or input: one line, exit 2 (runtime failures are TextError/RuntimeError: exit 1)."""


def add_arguments(p):
    p.add_argument("model", help="safetensors file from charnn export (or from this command)")
    p.add_argument("corpus", help="UTF-8 text, read with the model's tokenizer and vocabulary")
    p.add_argument("--steps", type=int, required=True, help="train until this many steps (counted from the start of the run, across --resume)")
    p.add_argument("--out", required=True, help="safetensors file to write (charnn import reads it); the training state goes beside it")
    p.add_argument("--batch", "-b", type=int, default=50, help="B: parallel streams in all, split across the processes (a multiple of their number) [50]")
    p.add_argument("--seq", "-t", type=int, default=50, help="T: truncated-BPTT window [50]")
    p.add_argument("--optim", choices=sorted(OPTIMIZERS), default="adam", help="optimizer, with charnn's settings [adam]")
    p.add_argument("--lr", type=float, help="learning rate [charnn's: adagrad 0.1, rmsprop and adam 0.002, sgd 1]")
    p.add_argument("--clip", type=float, default=5.0, help="clip each gradient element to [-clip, clip]; 0 = off [5]")
    p.add_argument("--clip-norm", type=float, default=0.0, help="rescale the gradient to this global L2 norm at most; 0 = off [0]")
    p.add_argument("--save-every", type=int, default=0, help="write OUT and its training state every N steps (0 = at the end only) [0]")
    p.add_argument("--resume", action="store_true", help="continue from OUT's training state (<OUT>.train.pt)")
    p.add_argument("--unknown", choices=["error", "skip", "unk"], help="corpus tokens the vocabulary lacks [unk for word-level models, error for character-level ones]")
    p.add_argument("--seed", type=int, default=1, help="dropout masks (rank r draws from seed + r) [1]")
    p.add_argument("--log-every", type=int, default=100, help="a progress line every N steps [100]")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="cuda: one GPU per process and NCCL; cpu: gloo [auto: cuda if available]")
    p.add_argument("--threads", type=int, help="torch threads per process [torch's default; torchrun sets 1 per process when it starts several]")


def state_path(out):
    """x.safetensors -> x.train.pt (any other name: name + .train.pt)."""
    return (out[: -len(".safetensors")] if out.endswith(".safetensors") else out) + ".train.pt"


class Streams:
    """charnn's StreamBatcher over ids (a 1-D int tensor), for streams [first, first + count) of B.

    Stream b covers ids[b * S : (b + 1) * S], S = floor(N / B); window w of an epoch reads
    T + 1 ids of each stream from w * T: inputs are the first T, targets the last T. An epoch
    has floor((S - 1) / T) windows; the next window starts the streams over."""

    def __init__(self, ids, batch, seq, first, count):
        self.ids, self.seq = ids, seq
        self.segment = len(ids) // batch
        self.windows_per_epoch = (self.segment - 1) // seq
        offsets = torch.arange(seq + 1).unsqueeze(1)  # [T + 1, 1]
        self.index = offsets + (torch.arange(first, first + count) * self.segment).unsqueeze(0)  # [T + 1, count]

    def window(self, w):
        """Ids [T + 1, count] (long) of window w of an epoch."""
        return self.ids[self.index + w * self.seq].long()


def main(args):
    code = 0
    try:
        run(args)
    except (UsageError, TextError, OSError, RuntimeError, ValueError) as e:
        # One line from the first process only (every rank meets the same input errors).
        if int(os.environ.get("RANK", "0")) == 0:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, OSError) and e.filename:
                message = f"cannot read {e.filename}: {e.strerror}"
            print(f"charnn_torch: {message}", file=sys.stderr)
        if os.environ.get("CHARNN_DEBUG"):
            raise
        code = 2 if isinstance(e, UsageError) else 1
    distributed = dist.is_initialized()
    if distributed:
        dist.destroy_process_group()
        # gloo's worker threads can still be joinable when the interpreter tears down its C++
        # objects, which aborts the process ("terminate called without an active exception")
        # after the work is done and written. Leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        sys.exit(code)


def check_options(args, world):
    for name in ("steps", "batch", "seq", "log_every"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.save_every < 0:
        raise UsageError(f"--save-every must be 0 or more, got {args.save_every}")
    if args.clip < 0 or args.clip_norm < 0:
        raise UsageError("--clip and --clip-norm must be 0 (off) or more")
    if args.lr is not None and not args.lr > 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    if args.batch % world:
        raise UsageError(f"--batch {args.batch} does not split evenly over {world} processes (pass a multiple of {world})")
    if os.path.abspath(args.out) == os.path.abspath(args.model) and not args.resume:
        raise UsageError(f"--out {args.out} is the model file itself (choose another name, or pass --resume to continue that run)")


def run(args):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    check_options(args, world)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no GPU (use --device cpu)")
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if args.threads:
        torch.set_num_threads(args.threads)

    model, description = charnn_torch.load(args.model)
    resumed = None
    if args.resume:
        resumed = load_state(state_path(args.out), description, args)
        if resumed["step"] >= args.steps:
            if rank == 0:
                print(f"the run is at step {resumed['step']} already, --steps {args.steps}: nothing to do (pass a larger --steps)", file=sys.stderr)
            return
        model.load_state_dict(resumed["model"], strict=True)
    ids, unknown = read_corpus(args, description)
    if len(ids) < args.batch * (args.seq + 1):
        raise TextError(f"{args.corpus} has {len(ids)} tokens, too few for --batch {args.batch} x (--seq {args.seq} + 1) = {args.batch * (args.seq + 1)}",
                        "use a smaller --batch or --seq, or a larger corpus")

    if "RANK" in os.environ:
        if use_cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    model = model.to(device).train()
    # DDP broadcasts rank 0's weights at construction: every replica starts the same.
    ddp = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None) if dist.is_initialized() else model
    default_lr, make_optimizer = OPTIMIZERS[args.optim]
    optimizer = make_optimizer(ddp.parameters(), args.lr if args.lr is not None else default_lr)

    local = args.batch // world
    streams = Streams(ids, args.batch, args.seq, rank * local, local)
    step, state = 0, None
    torch.manual_seed(args.seed + rank)
    if resumed:
        step = resumed["step"]
        optimizer.load_state_dict(resumed["optimizer"])
        if args.lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = args.lr
        state = carried_slice(resumed["carried"], rank * local, local, device)
        rng = resumed["rng"]
        if len(rng) == world:
            torch.set_rng_state(rng[rank])
        else:
            torch.manual_seed(args.seed + rank + 1000003 * step)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if rank == 0 else (lambda line: None)
    noun = "characters" if description["tokenizer"]["level"] == "char" else "tokens"
    log(f"{model.layers}x{model.hidden} {model.cell}, {len(ids):,} tokens, {streams.windows_per_epoch} steps per epoch; "
        f"{world} process{'es' if world > 1 else ''} x {local} streams ({'NCCL on GPUs' if use_cuda else 'gloo on CPUs' if world > 1 else device}), "
        f"{args.optim} lr {optimizer.param_groups[0]['lr']:g}" + (f"; resuming at step {step}" if resumed else "")
        + (f"; {sum(unknown.values()):,} {noun} outside the vocabulary ({args.unknown_rule})" if unknown else ""))

    V, B = model.vocab_size, args.batch
    logged, interval_sum, interval_steps = [], torch.zeros((), dtype=torch.float64, device=device), 0
    started, first_step = time.perf_counter(), step
    while step < args.steps:
        w = step % streams.windows_per_epoch
        if w == 0:
            state = None  # the streams start over: fresh hidden state, as charnn
        window = streams.window(w).to(device)  # [T + 1, local]
        logits, state = ddp(window[:-1], state)
        # charnn's objective: summed over the window's T steps, averaged over the B streams. Each
        # rank divides by its own streams; DDP averages over the ranks.
        loss = F.cross_entropy(logits.reshape(-1, V), window[1:].reshape(-1), reduction="sum") / local
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_value_(ddp.parameters(), args.clip)
        if args.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(ddp.parameters(), args.clip_norm)
        optimizer.step()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        step += 1
        interval_sum += loss.detach().double()
        interval_steps += 1
        if step % args.log_every == 0 or step == args.steps:
            if dist.is_initialized():
                dist.all_reduce(interval_sum)
            per_token = interval_sum.item() / (interval_steps * args.seq * world)
            logged.append((step, per_token))
            elapsed = time.perf_counter() - started
            log(f"step {step} | epoch {step / streams.windows_per_epoch:.2f} | loss {per_token:.4f} | "
                f"{(step - first_step) * B * args.seq / elapsed:,.0f} tok/s")
            interval_sum.zero_()
            interval_steps = 0
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            save_all(args, model, description, optimizer, step, state, rank, world)
    elapsed = time.perf_counter() - started
    save_all(args, model, description, optimizer, step, state, rank, world)

    digest = hashlib.sha256(b"".join(bytes(t.detach().float().cpu().clone().untyped_storage()) for t in model.state_dict().values())).hexdigest()
    digests = [None] * world
    if dist.is_initialized():
        dist.all_gather_object(digests, digest)
    else:
        digests = [digest]
    if rank == 0:
        print(json.dumps({
            "out": args.out, "steps": step, "steps_this_run": step - first_step, "world_size": world, "batch": B, "seq": args.seq,
            "backend": dist.get_backend() if dist.is_initialized() else None, "device": device.type,
            "threads": torch.get_num_threads(), "seconds": elapsed,
            "tokens_per_s": (step - first_step) * B * args.seq / elapsed if elapsed > 0 else None,
            "first_loss": logged[0][1] if logged else None, "last_loss": logged[-1][1] if logged else None,
            "losses": logged, "rank_weight_sha256": digests,
        }), flush=True)
    if dist.is_initialized():
        # No rank leaves while another is still at work: gloo aborts a process whose group is
        # torn down under a peer's pending operation.
        dist.barrier()


def read_corpus(args, description):
    """The corpus's ids in the model's vocabulary (int32 [N]), and {unknown token: count}."""
    tok = description["tokenizer"]
    tokens = description["vocabulary"]["tokens"]
    args.unknown_rule = args.unknown or ("unk" if tok["level"] == "word" else "error")
    if args.unknown_rule == "unk" and tok["level"] != "word":
        raise UsageError("--unknown unk needs a word-level model: a character vocabulary has no <unk> (use --unknown skip)")
    text = read_text(args.corpus, tok["invalidUtf8"])
    ids, unknown = encode(tokenize(text, tok["level"], tok["wordSplit"], tok.get("lineEndings", "keep")), tokens, args.unknown_rule, args.corpus)
    return torch.tensor(ids, dtype=torch.int32), unknown


def carried_slice(carried, first, count, device):
    """Streams [first, first + count) of the saved state (h, or (h, c); each [layers, B, H])."""
    if carried is None:
        return None
    if isinstance(carried, (list, tuple)):
        return tuple(s[:, first : first + count].to(device) for s in carried)
    return carried[:, first : first + count].to(device)


def gather_carried(state, world):
    """Every rank's carried state joined along the stream axis (on rank 0's CPU), or None."""
    if state is None:
        return None
    parts = list(state) if isinstance(state, tuple) else [state]
    joined = []
    for s in parts:
        if dist.is_initialized():
            pieces = [torch.empty_like(s) for _ in range(world)]
            dist.all_gather(pieces, s.contiguous())
            s = torch.cat(pieces, dim=1)
        joined.append(s.cpu())
    return tuple(joined) if isinstance(state, tuple) else joined[0]


def save_all(args, model, description, optimizer, step, state, rank, world):
    """OUT (the model, for charnn import) and its training state, each written atomically by rank 0."""
    carried = gather_carried(state, world)  # a collective: every rank takes part
    rng = [None] * world
    if dist.is_initialized():
        dist.all_gather_object(rng, torch.get_rng_state())
    else:
        rng = [torch.get_rng_state()]
    if rank != 0:
        return
    charnn_torch.save(model, description, args.out)
    training = {
        "format": STATE_FORMAT, "version": STATE_VERSION, "step": step, "batch": args.batch, "seq": args.seq, "optim": args.optim,
        "vocabulary": description["vocabulary"]["tokens"], "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(), "carried": carried, "rng": rng,
    }
    path = state_path(args.out)
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(training, tmp)
    os.replace(tmp, path)


def load_state(path, description, args):
    """The training state to resume from, checked against the model and the options."""
    if not os.path.exists(path):
        raise UsageError(f"--resume: {path} does not exist (it is written beside --out at every save; drop --resume to start a run)")
    try:
        s = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged or foreign file: whatever torch raises
        raise RuntimeError(f"--resume: {path} cannot be read as a training state ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(s, dict) or s.get("format") != STATE_FORMAT or s.get("version") != STATE_VERSION:
        raise RuntimeError(f"--resume: {path} is not a charnn_torch.py training state of version {STATE_VERSION}")
    if s["vocabulary"] != description["vocabulary"]["tokens"]:
        raise UsageError(f"--resume: {path} belongs to a model with another vocabulary than {args.model}")
    fixed = [("--batch", args.batch, s["batch"]), ("--seq", args.seq, s["seq"]), ("--optim", args.optim, s["optim"])]
    changed = [f"{name} {given} (the run has {stored})" for name, given, stored in fixed if given != stored]
    if changed:
        raise UsageError(f"{', '.join(changed)}: --resume continues the run with its settings")
    return s
