"""model.py - NemotronForCausalLM in plain PyTorch (no transformers), and
safetensors reading/writing with the standard library.

The architecture, as HF transformers' modeling_nemotron computes it:
  h = embed_tokens[ids]
  for each layer:
    a = LayerNorm1P(h)          (x - mean) / sqrt(var + eps) * (1 + w) + b
    h = h + o_proj(attention(q_proj a, k_proj a, v_proj a))
        GQA: num_key_value_heads K/V heads shared by the query heads;
        rotary (NeoX "rotate half" pairing) on the first
        partial_rotary_factor * head_dim dims of each head, theta rope_theta;
        causal softmax(q k^T / sqrt(head_dim)) v
    m = LayerNorm1P(h)
    h = h + down_proj(relu(up_proj m) ** 2)      (squared ReLU, no gate)
  logits = lm_head(LayerNorm1P(h))               (untied)
No biases in the linear layers. Parameter names are HF's, so state_dict()
is the checkpoint layout our C loader reads.
"""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, vocab_size=4096, hidden_size=256, intermediate_size=768,
                 num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1,
                 head_dim=128, max_position_embeddings=4096, norm_eps=1e-5,
                 rope_theta=10000.0, partial_rotary_factor=0.5, bos_token_id=2,
                 eos_token_id=3, **_ignored):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim or hidden_size // num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.norm_eps = norm_eps
        self.rope_theta = rope_theta
        self.partial_rotary_factor = partial_rotary_factor
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls(**json.load(f))

    def hf_dict(self):
        """config.json as HF writes it for NemotronForCausalLM."""
        return {
            "architectures": ["NemotronForCausalLM"],
            "model_type": "nemotron",
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "hidden_act": "relu2",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "num_hidden_layers": self.num_hidden_layers,
            "max_position_embeddings": self.max_position_embeddings,
            "norm_eps": self.norm_eps,
            "rope_theta": self.rope_theta,
            "partial_rotary_factor": self.partial_rotary_factor,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "vocab_size": self.vocab_size,
            "attention_bias": False,
            "mlp_bias": False,
        }


class LayerNorm1P(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim))  # stored as w, applied as 1 + w
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.weight + 1, self.bias, self.eps)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv, self.d = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, self.h * self.d, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, self.kv * self.d, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, self.kv * self.d, bias=False)
        self.o_proj = nn.Linear(self.h * self.d, c.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv, self.d).transpose(1, 2)
        rot = cos.shape[-1]
        q = torch.cat((q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]), -1)
        k = torch.cat((k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]), -1)
        if self.kv != self.h:
            k = k.repeat_interleave(self.h // self.kv, dim=1)
            v = v.repeat_interleave(self.h // self.kv, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.d))
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.h * self.d)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(torch.relu(self.up_proj(x)).square())


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = LayerNorm1P(c.hidden_size, c.norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = LayerNorm1P(c.hidden_size, c.norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = LayerNorm1P(c.hidden_size, c.norm_eps)


class Nemotron(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = Body(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.rot = int(c.head_dim * c.partial_rotary_factor)

    def rotary(self, T, device, dtype):
        inv = 1.0 / (self.config.rope_theta ** (
            torch.arange(0, self.rot, 2, dtype=torch.float64) / self.rot))
        ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
        ang = torch.cat((ang, ang), -1)
        return ang.cos().to(device, dtype), ang.sin().to(device, dtype)

    def forward(self, ids):
        B, T = ids.shape
        x = self.model.embed_tokens(ids)
        cos, sin = self.rotary(T, x.device, x.dtype)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))

    def init_weights(self, seed):
        """GPT-2 style: normal(0, 0.02), output projections scaled down by
        depth; norms w = 0 (scale 1 + w = 1), b = 0."""
        g = torch.Generator().manual_seed(seed)
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.zeros_(p)
            else:
                s = std / math.sqrt(2 * self.config.num_hidden_layers) \
                    if name.endswith(("o_proj.weight", "down_proj.weight")) else std
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * s)


# --- safetensors, standard library only ------------------------------------

def load_safetensors(path):
    """{name: float32 tensor} from a safetensors file (F32, F16 or BF16)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = bytearray(data[a:b])
        dt = info["dtype"]
        if dt == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32)
        elif dt == "F16":
            t = torch.frombuffer(raw, dtype=torch.float16).float()
        elif dt == "BF16":
            # bf16 is the top half of a float32
            t = (torch.frombuffer(raw, dtype=torch.int16).to(torch.int32) << 16).view(torch.float32)
        else:
            raise ValueError("%s: unsupported dtype %s" % (name, dt))
        out[name] = t.reshape(info["shape"]).clone()
    return out


def save_safetensors(path, tensors, dtype="bf16"):
    """Write {name: tensor} as safetensors, F32 or BF16 (round to nearest
    even), tensors in the order given."""
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().float().contiguous().cpu()
        if dtype == "bf16":
            bits = t.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
            bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
            bits = torch.where(bits >= 0x8000, bits - 0x10000, bits)
            blob = bits.to(torch.int16).numpy().tobytes()  # numpy: a python3-torch dependency
            code = "BF16"
        else:
            blob = t.numpy().tobytes()
            code = "F32"
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
    header["__metadata__"] = {"format": "pt"}
    hdr = json.dumps(header, separators=(",", ":")).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for blob in blobs:
            f.write(blob)


def from_pretrained(model_dir):
    c = Config.load(model_dir + "/config.json")
    m = Nemotron(c)
    m.load_state_dict(load_safetensors(model_dir + "/model.safetensors"))
    return m
