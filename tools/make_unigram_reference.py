#!/usr/bin/env python3
"""A tiny multilingual-style embedder with a Unigram tokenizer, whole, with the reference packages' own outputs for it
(Tests/Fixtures/reference/xlmr-tiny/): XLM-RoBERTa (the architecture of multilingual E5 and paraphrase-multilingual
MiniLM: BERT with positions counted from the padding id + 1) and its tokenizer, a SentencePiece Unigram model trained
by the `sentencepiece` package with its default `nmt_nfkc` normalization and turned into `tokenizer.json` by
transformers' own XLM-RoBERTa converter (a `Precompiled` normalizer, WhitespaceSplit + Metaspace, `<s> … </s>`).

Written: the folder as `sentence-transformers` saves it (random weights, seeded; mean pooling, normalized),
`reference.json` — for each text the ids Hugging Face `tokenizers` gives and sentence-transformers' vector — and
`tokenizer-variants.json`: the same vocabulary under other pipelines Unigram files use (T5's Metaspace alone, older
XLM-R files' Replace of runs of spaces), with `tokenizers`' ids.

Needs: pip install torch transformers tokenizers sentencepiece protobuf sentence-transformers

    python3 tools/make_unigram_reference.py
"""
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "reference", "xlmr-tiny")
CORPUS = os.path.join(ROOT, "Tests", "Fixtures", "reference", "perplexity-text.txt")
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello  world!\tTabs,\nnewlines   and    runs of spaces.",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３, ligatures ﬁ ﬂ, numerals Ⅻ ⅳ, ½ and ™",
    "naïve café résumé — e\u0301 composed, Å and Å",
    "東京 서울 Москва القاهرة 🙂 👩‍💻",
    "<s>a special token</s> in the text and <mask> too",
    "   leading and trailing   ",
    "",
]


def main():
    import sentencepiece as spm
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_hf_tiny_reference import clean_tokenizer_config

    torch.set_num_threads(2)
    scratch = tempfile.mkdtemp()
    spm.SentencePieceTrainer.train(
        input=CORPUS, model_prefix=os.path.join(scratch, "sentencepiece.bpe"), vocab_size=800, model_type="unigram",
        character_coverage=0.995, bos_id=0, pad_id=1, eos_id=2, unk_id=3, bos_piece="<s>", pad_piece="<pad>",
        eos_piece="</s>", unk_piece="<unk>", num_threads=1, minloglevel=2)
    tok = XLMRobertaTokenizer.from_pretrained(scratch)
    hf_folder = os.path.join(scratch, "hf")
    tok.save_pretrained(hf_folder)

    config = XLMRobertaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=128, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
                              bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    torch.manual_seed(20261207)
    model = XLMRobertaModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.copy_((1 if name.endswith("weight") else 0) + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    model.save_pretrained(hf_folder, safe_serialization=True)

    transformer = models.Transformer(hf_folder, max_seq_length=128)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    st = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    shutil.rmtree(OUT, ignore_errors=True)
    st.save(OUT)
    for stray in ("README.md", "sentencepiece.bpe.model"):
        path = os.path.join(OUT, stray)
        if os.path.exists(path):
            os.remove(path)
    clean_tokenizer_config(OUT)

    fast = Tokenizer.from_file(os.path.join(OUT, "tokenizer.json"))
    cases = []
    for text in TEXTS:
        ids = fast.encode(text).ids
        vector = st.encode([text], convert_to_numpy=True)[0].tolist() if text else None
        cases.append({"text": text, "ids": ids, "vector": vector and [round(x, 7) for x in vector]})
    with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"made_by": "tokenizers + sentence-transformers", "cases": cases}, f, ensure_ascii=False)
        f.write("\n")

    base = json.load(open(os.path.join(OUT, "tokenizer.json"), encoding="utf-8"))
    precompiled = base["normalizer"]
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    variants = {
        "t5": (precompiled, metaspace),
        "xlmr-older": ({"type": "Sequence", "normalizers": [precompiled, {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
                       metaspace),
        "first-no-split": (None, dict(metaspace, prepend_scheme="first", split=False)),
    }
    out = {"texts": TEXTS, "variants": {}}
    for name, (normalizer, pre) in variants.items():
        j = dict(base, normalizer=normalizer, pre_tokenizer=pre)
        t = Tokenizer.from_str(json.dumps(j))
        out["variants"][name] = {"normalizer": normalizer is precompiled and "base" or (normalizer and "base+collapse"),
                                 "pre_tokenizer": pre, "ids": [t.encode(x).ids for x in TEXTS]}
    with open(os.path.join(OUT, "tokenizer-variants.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")
    shutil.rmtree(scratch)
    print(f"wrote {OUT}: {len(cases)} cases, {len(variants)} variants")


if __name__ == "__main__":
    main()
