"""medzoo's PoolFormer and SwinV2 against timm's, on the same randomised weights: prints and writes the differences.

    # where torch and timm are installed (any machine; no download):
    python tools/timm_parity.py write /tmp/parity
    # where medzoo is installed (the Keras side; TensorFlow or JAX backend):
    python tools/timm_parity.py check /tmp/parity --csv benchmarks/results/timm_parity.csv

`write` builds each timm model untrained, replaces every parameter by random
values (LayerScale and logit scales too, so no block is near the identity),
saves the state dict as .safetensors and timm's logits on random inputs.
`check` loads those files with `weights=<file>` through medzoo's torch-free
reader and compares logits.
"""

import argparse
import os
import sys

# medzoo variant, timm model name, input side (SwinV2 at its own 256: shifted windows, masks and merging all run).
MODELS = (("poolformer_s12", "poolformer_s12", 64), ("poolformer_s36", "poolformer_s36", 64),
          ("swinv2_tiny_window8", "swinv2_tiny_window8_256", 256),
          ("swinv2_tiny_window16", "swinv2_tiny_window16_256", 256))  # fmt: skip


def write(folder):
    import numpy as np
    import timm
    import torch
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    for variant, timm_name, side in MODELS:
        model = timm.create_model(timm_name, pretrained=False)
        model.train(False)  # inference mode (dropout, drop path off)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "logit_scale" in name:
                    parameter.copy_(torch.log(torch.rand_like(parameter) * 20 + 5))
                else:
                    is_gain = name.endswith("weight") and parameter.ndim == 1
                    parameter.copy_(torch.randn_like(parameter) * (0.2 if parameter.ndim > 1 else 0.5) + is_gain)
            images = torch.randn(2, 3, side, side)
            logits = model(images).numpy()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(folder, f"{variant}.safetensors"))
        np.savez(os.path.join(folder, f"{variant}.npz"), images=images.numpy().transpose(0, 2, 3, 1), logits=logits,
                 versions=np.array([f"timm {timm.__version__}", f"torch {torch.__version__}"]))  # fmt: skip
        print(f"wrote {variant} ({timm_name}, {side} px)")


def check(folder, csv_path=None):
    import keras
    import numpy as np

    from medzoo.models.backbones import BACKBONES

    rows = []
    for variant, timm_name, side in MODELS:
        saved = np.load(os.path.join(folder, f"{variant}.npz"))
        model = BACKBONES[variant].constructor(input_shape=(side, side, 3),
                                               weights=os.path.join(folder, f"{variant}.safetensors"))  # fmt: skip
        logits = np.asarray(model.predict(saved["images"], verbose=0))
        difference = float(np.abs(logits - saved["logits"]).max())
        rows.append({"model": variant, "timm_model": timm_name, "side": side, "reference": " / ".join(saved["versions"]),
                     "keras_backend": keras.backend.backend(), "max_abs_diff": f"{difference:.3g}",
                     "max_abs_logit": f"{np.abs(saved['logits']).max():.3g}",
                     "relative": f"{difference / np.abs(saved['logits']).max():.3g}"})  # fmt: skip
        print(", ".join(f"{key} {value}" for key, value in rows[-1].items()))
    if csv_path:
        from medzoo.io.atomic import write_csv

        write_csv(csv_path, rows)
        print(f"wrote {csv_path}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("write", "check"))
    parser.add_argument("folder", help="where write puts, and check reads, the checkpoints and timm's logits")
    parser.add_argument("--csv", help="check: also write the differences to this CSV")
    args = parser.parse_args(argv)
    write(args.folder) if args.step == "write" else check(args.folder, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
