"""Build a tiny random-weight Llama model that vLLM's CPU build can serve.

Run it with the vLLM virtualenv's interpreter (it needs ``torch``,
``transformers`` and ``tokenizers``, which the project's own venv lacks)::

    .venv-vllm/bin/python tests/vllm_support/tiny_model.py OUT_DIR

The model writes gibberish: the tests get well-formed verdicts from it only
through vLLM's structured outputs (a JSON schema).  What matters is that the
server, its tokenizer, its chat template and its error paths are vLLM's own.

Everything is deterministic (fixed seed, fixed training text), and a second
run into the same directory is a no-op (a stamp file records the spec).

Design notes
------------
* ``head_dim`` 64: the CPU attention backend wants 32 <= head_dim <= 512.
* The tokenizer is a byte-level BPE trained offline on :data:`CORPUS`, so any
  byte string round-trips; ``<think>`` and ``</think>`` are added tokens (not
  *special* ones, so they survive ``skip_special_tokens`` in the decoded text,
  as in DeepSeek-R1's tokenizer, which the ``deepseek_r1`` reasoning parser
  expects).
* The chat template renders every role, the GenRM ones (``response_1``,
  ``response_2``, ``principle``) included, as one line ``<|ROLE|>content``.
  Jinja drops a newline written right after a ``{% %}`` tag, so the newline is
  emitted inside ``{{ }}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

SEED = 1234
SPEC_VERSION = 1
SPEC = {
    "version": SPEC_VERSION,
    "seed": SEED,
    "num_hidden_layers": 2,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
}
STAMP = "genrm_tiny_model.json"

THINK_START = "<think>"
THINK_END = "</think>"
BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + (message['content'] if message['content'] is string"
    " else '') + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

CORPUS = """\
A pairwise judge reads a conversation and two candidate responses, then says which one is better.
Response 1 explains the answer step by step; response 2 gives only the final number.
The principle asks for a helpful, honest and harmless answer that follows the instructions.
Score each response from 1 to 5, where 5 is the most helpful, and give a ranking from 1 to 6.
A ranking of 1 means response 1 is much better; 6 means response 2 is much better.
{"score_1": 4, "score_2": 2, "ranking": 2}
{"response_1_analysis": "clear and correct", "response_2_analysis": "too short", "score_1": 5}
```json
{"score_1": 3, "score_2": 3, "ranking": 4}
```
<think>Let me compare both responses carefully before answering.</think>
The user asked: what is the capital of France? The assistant answered: Paris is the capital.
Write a haiku about the sea. Waves fold into foam, gray gulls circle and cry, salt wind on dunes.
Translate "good morning" into German: Guten Morgen. Into Spanish: Buenos dias.
def add(a, b):
    return a + b
The quick brown fox jumps over the lazy dog while the five boxing wizards jump quickly.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 100 1000; punctuation: , . ; : ! ? ( ) [ ] { } " ' - _ / \\
"""


def _build_tokenizer(out: Path):  # type: ignore[no-untyped-def]
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=SPEC["vocab_size"],
        min_frequency=1,
        special_tokens=[UNK, BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    # Not special: they must stay in the decoded text for the reasoning parser.
    tok.add_tokens(
        [
            AddedToken(THINK_START, special=False, normalized=False),
            AddedToken(THINK_END, special=False, normalized=False),
        ]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=SPEC["max_position_embeddings"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def _build_model(out: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=SPEC["hidden_size"],
        intermediate_size=SPEC["intermediate_size"],
        num_hidden_layers=SPEC["num_hidden_layers"],
        num_attention_heads=SPEC["num_attention_heads"],
        num_key_value_heads=SPEC["num_key_value_heads"],
        head_dim=SPEC["head_dim"],
        max_position_embeddings=SPEC["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.save_pretrained(out, safe_serialization=True)


def _digest(out: Path) -> str:
    h = hashlib.sha256()
    for name in ("model.safetensors", "tokenizer.json"):
        h.update((out / name).read_bytes())
    return h.hexdigest()


def _stamp_spec(stamp: Path) -> object:
    """The spec a previous build recorded, or None for an unreadable stamp (rebuild then)."""
    try:
        return json.loads(stamp.read_text())["spec"]
    except (ValueError, KeyError, TypeError):
        return None


def build_tiny_model(out_dir: str | Path, *, force: bool = False) -> Path:
    """Build the tiny model into ``out_dir`` (no-op when already built).

    Returns the directory, ready for ``vllm serve``.
    """
    out = Path(out_dir)
    stamp = out / STAMP
    if not force and stamp.is_file() and _stamp_spec(stamp) == SPEC:
        return out
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer(out)
    _build_model(out, tokenizer)
    stamp.write_text(json.dumps({"spec": SPEC, "sha256": _digest(out)}, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="directory to write the model into")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    out = build_tiny_model(args.out_dir, force=args.force)
    stamp = json.loads((out / STAMP).read_text())
    print(f"tiny model in {out} ({time.monotonic() - t0:.1f} s) sha256={stamp['sha256'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
