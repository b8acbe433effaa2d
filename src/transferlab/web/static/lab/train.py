import os
from pathlib import Path

import torch

from transferlab.data import build_transforms, load_rgb
from transferlab.models import create_model

SAMPLE_DATA = Path(os.environ["TRANSFERLAB_SAMPLE_DATA"])  # {{starter.data}}

# {{starter.load}}
model = create_model("tf_efficientnet_lite0")
print(model.head)

# {{starter.head}}
classes = sorted(p.name for p in (SAMPLE_DATA / "train").iterdir())
new_layer = torch.nn.Linear(model.num_features, len(classes))
model.head = new_layer

# {{starter.freeze}}
for p in model.body.parameters():
    p.requires_grad = False

# {{starter.count}}
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
print(f"trainable {trainable:,}  frozen {frozen:,}")

# {{starter.batch}}
transform = build_transforms(model.data_config, train=False)
paths = [sorted((SAMPLE_DATA / "val" / c).iterdir())[0] for c in classes]
images = torch.stack([transform(load_rgb(p)) for p in paths])
labels = torch.arange(len(classes))
model.eval()
with torch.no_grad():
    stem_maps = model.body.conv_stem(images)
    features = model.forward_features(images)
logits = model.head(features)
loss = torch.nn.functional.cross_entropy(logits, labels)
loss.backward()

# {{starter.look}}
print("images", tuple(images.shape), "features", tuple(features.shape))
print("loss", round(loss.item(), 3), "head grad", tuple(model.head.weight.grad.shape))
print("done")
