# The fine-tune benchmark's training step in PyTorch on the CPU: reads a FinetuneBenchSpec (JSON) from argv[1], prints one JSON result line.
#
# Same step as graft's (src/bench/finetune-setup.ts) and the tfjs peer (src/bench/peers/): synthetic seeded batch,
# cross-entropy, backward, AdamW (lr 1e-4, weight decay 0.01). ResNet: torchvision resnet18/50 with a new fc, BN
# in train mode (full / LoRA) or eval mode with the backbone under no_grad (linear probe); LoRA on every conv of
# layer4 (conv1..3 and downsample.0). BERT: a compact BertForSequenceClassification (HF layout), hidden dropout
# 0.1 in train mode; LoRA on query / value of every layer. LoRA as PEFT: A kaiming-uniform(a=sqrt 5), B zeros,
# scale alpha / r. Progress goes to stderr as "progress DONE TOTAL".
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BERT_SIZES = {
    'bert-tiny': dict(hidden=128, layers=2, heads=2, intermediate=512),
    'bert-mini': dict(hidden=256, layers=4, heads=4, intermediate=1024),
    'bert-base': dict(hidden=768, layers=12, heads=12, intermediate=3072),
}
VOCAB, MAX_POS, TYPE_VOCAB, LN_EPS = 30522, 512, 2, 1e-12
ADAMW = dict(lr=1e-4, weight_decay=0.01)


class LoraLinear(nn.Module):
    """y = base(x) + scale * B(A(x)); base frozen. A [r, in], B [out, r]."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scale


class LoraConv2d(nn.Module):
    """y = base(x) + scale * B(A(x)); A has the base conv's kernel / stride / padding (in → r), B is 1×1 (r → out)."""

    def __init__(self, base: nn.Conv2d, r: int, alpha: float):
        super().__init__()
        self.base = base
        self.lora_A = nn.Conv2d(base.in_channels, r, base.kernel_size, base.stride, base.padding, bias=False)
        self.lora_B = nn.Conv2d(r, base.out_channels, 1, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scale


class BertLayer(nn.Module):
    def __init__(self, h: int, heads: int, inter: int, p: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out = nn.Linear(h, h)
        self.ln1 = nn.LayerNorm(h, eps=LN_EPS)
        self.inter = nn.Linear(h, inter)
        self.out = nn.Linear(inter, h)
        self.ln2 = nn.LayerNorm(h, eps=LN_EPS)
        self.drop = nn.Dropout(p)

    def forward(self, x, mask_bias):
        b, s, h = x.shape
        split = lambda t: t.view(b, s, self.heads, h // self.heads).transpose(1, 2)  # [B, nh, S, dh]
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + mask_bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, h)
        x = self.ln1(x + self.drop(self.attn_out(ctx)))
        return self.ln2(x + self.drop(self.out(F.gelu(self.inter(x)))))


class BertClassifier(nn.Module):
    """word + position + type embeddings → LayerNorm → L layers → tanh pooler on [CLS] → classifier."""

    def __init__(self, hidden: int, layers: int, heads: int, intermediate: int, num_classes: int, p: float = 0.1):
        super().__init__()
        self.word = nn.Embedding(VOCAB, hidden)
        self.pos = nn.Embedding(MAX_POS, hidden)
        self.type_emb = nn.Embedding(TYPE_VOCAB, hidden)
        self.ln = nn.LayerNorm(hidden, eps=LN_EPS)
        self.layers = nn.ModuleList([BertLayer(hidden, heads, intermediate, p) for _ in range(layers)])
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, num_classes)
        self.drop = nn.Dropout(p)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features(self, ids, mask):
        b, s = ids.shape
        pos = torch.arange(s).unsqueeze(0)
        x = self.drop(self.ln(self.word(ids) + self.pos(pos) + self.type_emb(torch.zeros_like(ids))))
        mask_bias = ((1.0 - mask) * -1e9).view(b, 1, 1, s)
        for layer in self.layers:
            x = layer(x, mask_bias)
        return torch.tanh(self.pooler(x[:, 0]))

    def head(self, f):
        return self.classifier(self.drop(f))


def resnet_features(m, x):
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    return torch.flatten(m.avgpool(x), 1)


def build(spec):
    """(model, trainable params, step closure returning the loss tensor)."""
    g = torch.Generator().manual_seed(spec['seed'])
    torch.manual_seed(spec['seed'])
    b, c, strategy = spec['batch'], spec['numClasses'], spec['strategy']
    y = torch.randint(0, c, (b,), generator=g)
    r, alpha = spec['loraRank'], spec['loraAlpha']
    if spec['model'] in ('resnet18', 'resnet50'):
        import torchvision

        model = getattr(torchvision.models, spec['model'])(weights=None, num_classes=c)
        x = torch.randn(b, 3, spec['res'], spec['res'], generator=g)
        head = model.fc
        if strategy == 'lora':
            for blk in model.layer4:
                for name in ('conv1', 'conv2', 'conv3'):
                    if hasattr(blk, name):
                        setattr(blk, name, LoraConv2d(getattr(blk, name), r, alpha))
                if blk.downsample is not None:
                    blk.downsample[0] = LoraConv2d(blk.downsample[0], r, alpha)
        features = lambda: resnet_features(model, x)
        logits = lambda: model(x)
    elif spec['model'] in BERT_SIZES:
        model = BertClassifier(num_classes=c, **BERT_SIZES[spec['model']])
        ids = torch.randint(1000, VOCAB, (b, spec['seq']), generator=g)
        mask = torch.ones(b, spec['seq'])
        head = model.classifier
        if strategy == 'lora':
            for layer in model.layers:
                layer.query = LoraLinear(layer.query, r, alpha)
                layer.value = LoraLinear(layer.value, r, alpha)
        features = lambda: model.features(ids, mask)
        logits = lambda: model.head(model.features(ids, mask))
    else:
        raise ValueError(f"unknown model {spec['model']}")

    if strategy == 'full':
        trainable = list(model.parameters())
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        keep = [head] + [m for m in model.modules() if isinstance(m, (LoraLinear, LoraConv2d))]
        for m in keep:
            for name, p in m.named_parameters():
                if m is head or name.startswith('lora_'):
                    p.requires_grad_(True)
        trainable = [p for p in model.parameters() if p.requires_grad]
    if strategy == 'linear-probe':
        model.eval()

        def loss_fn():
            with torch.no_grad():
                f = features()
            return F.cross_entropy(head(f), y)

    elif strategy in ('full', 'lora'):
        model.train()
        loss_fn = lambda: F.cross_entropy(logits(), y)
    else:
        raise ValueError(f'unknown strategy {strategy}')
    opt = torch.optim.AdamW(trainable, **ADAMW)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.item()

    return model, trainable, step


def main():
    spec = json.loads(sys.argv[1])
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    model, trainable, step = build(spec)
    total = spec['warmup'] + spec['steps']
    ms, losses = [], []
    for i in range(total):
        t0 = time.perf_counter()
        loss = step()
        dt = (time.perf_counter() - t0) * 1000
        if not math.isfinite(loss):
            raise RuntimeError(f'loss is {loss} at step {i}')
        losses.append(loss)
        if i >= spec['warmup']:
            ms.append(dt)
        print(f'progress {i + 1} {total}', file=sys.stderr, flush=True)
    med = statistics.median(ms)
    print(json.dumps({
        'peer': 'torch',
        'description': f'pytorch {torch.__version__} cpu ({threads} threads)',
        'samplesPerSec': spec['batch'] * 1000 / med,
        'medianStepMs': med,
        'steps': len(ms),
        'trainableParams': sum(p.numel() for p in trainable),
        'totalParams': sum(p.numel() for p in model.parameters()),
        'losses': losses,
    }))


if __name__ == '__main__':
    main()
