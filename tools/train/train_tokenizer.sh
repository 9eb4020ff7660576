#!/bin/sh
# train_tokenizer.sh DATA_DIR [VOCAB_SIZE]
#
# A SentencePiece BPE tokenizer for the small Nemotron model, trained by
# Debian's spm_train (package sentencepiece) on DATA_DIR/spm_train.txt (made
# by build_data.py), with the Nemotron-like settings of the reference
# tokenizer in ../shared/fixtures/tokenizer (read out of that model's
# TrainerSpec): BPE, byte_fallback, split_digits, identity normalization,
# add_dummy_prefix, whitespace kept (remove_extra_whitespaces off,
# whitespace-only pieces allowed), max_sentence_length 8192, character
# coverage 0.9995; pad 0, unk 1, bos 2 (<s>), eos 3 (</s>) as in Nemotron,
# user-defined <extra_id_0>..<extra_id_9> at 4..13.
#
# Writes into DATA_DIR:
#   tokenizer.model, tokenizer.vocab   the SentencePiece model
#   tokenizer.json                     the same vocabulary as an HF tokenizer.json
#                                      (tools/spm_to_tokenizer_json.py)
#   tokenizer_config.json              bos/eos/pad and the chat template
#   nodummy.model                      tokenizer.model with add_dummy_prefix off,
#                                      used by train.py to encode text that
#                                      follows a newline (see there)
set -eu
DATA=${1:?usage: train_tokenizer.sh DATA_DIR [VOCAB_SIZE]}
VOCAB=${2:-4096}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

spm_train \
  --input="$DATA/spm_train.txt" \
  --model_prefix="$DATA/tokenizer" \
  --model_type=bpe \
  --vocab_size="$VOCAB" \
  --character_coverage=0.9995 \
  --input_sentence_size=2000000 \
  --shuffle_input_sentence=true \
  --random_seed=1234 \
  --max_sentence_length=8192 \
  --num_threads=2 \
  --byte_fallback=true \
  --split_digits=true \
  --allow_whitespace_only_pieces=true \
  --remove_extra_whitespaces=false \
  --add_dummy_prefix=true \
  --normalization_rule_name=identity \
  --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 \
  --user_defined_symbols='<extra_id_0>,<extra_id_1>,<extra_id_2>,<extra_id_3>,<extra_id_4>,<extra_id_5>,<extra_id_6>,<extra_id_7>,<extra_id_8>,<extra_id_9>' \
  > "$DATA/spm_train.log" 2>&1

# The HF tokenizer.json of the same vocabulary (Metaspace layout).
$PY "$HERE/../spm_to_tokenizer_json.py" "$DATA/tokenizer.model" > "$DATA/tokenizer.json"

# tokenizer_config.json: the special tokens and Nemotron-Mini's chat template
# (the one published with the real model; the same as the test fixture's).
$PY - "$DATA/tokenizer_config.json" <<'EOF'
import json, sys
template = (
    "{{'<extra_id_0>System'}}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{'\\n' + message['content'].strip()}}{% if tools or contexts %}{{'\\n'}}{% endif %}{% endif %}"
    "{% endfor %}{% if tools %}{% for tool in tools %}{{ '\\n<tool> ' + tool|tojson + ' </tool>' }}"
    "{% endfor %}{% endif %}{% if contexts %}{% if tools %}{{'\\n'}}{% endif %}{% for context in contexts %}"
    "{{ '\\n<context> ' + context.strip() + ' </context>' }}{% endfor %}{% endif %}{{'\\n\\n'}}"
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '<extra_id_1>User\\n' + message['content'].strip() + '\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<extra_id_1>Assistant\\n' + message['content'].strip() + '\\n' }}"
    "{% elif message['role'] == 'tool' %}{{ '<extra_id_1>Tool\\n' + message['content'].strip() + '\\n' }}"
    "{% endif %}{% endfor %}{{'<extra_id_1>Assistant\\n'}}")
cfg = {"add_bos_token": False, "add_eos_token": False, "bos_token": "<s>",
       "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
       "clean_up_tokenization_spaces": True, "model_max_length": 4096,
       "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template}
with open(sys.argv[1], "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
EOF

# nodummy.model: the same model with NormalizerSpec.add_dummy_prefix = false.
# Protobuf merges a repeated embedded message field, so appending
# normalizer_spec (field 3) = { add_dummy_prefix (field 3) : 0 } overrides it.
$PY - "$DATA/tokenizer.model" "$DATA/nodummy.model" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(data + b"\x1a\x02\x18\x00")
EOF

echo "tokenizer: $(wc -l < "$DATA/tokenizer.vocab") pieces in $DATA/tokenizer.model, $DATA/tokenizer.json"
