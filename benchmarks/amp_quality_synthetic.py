"""lite on the synthetic lesions, CPU bfloat16 autocast (amp=True) against float32 (amp=False).

    python benchmarks/amp_quality_synthetic.py

Six epochs at 96 px on 96 training images, seed 0; prints the best and last validation Dice of each.
A quick check only: the real comparison is benchmarks/train_real.py --amp / --no-amp on Kvasir-SEG.
"""

import tempfile

import banet_lite as bl

for amp in (True, False):
    with tempfile.TemporaryDirectory() as out:
        result = bl.train.fit(bl.train.TrainConfig(preset="lite", epochs=6, img_size=96, synthetic_train=96,
                                                   amp=amp, progress=False, out=out))
        print(f"lite, synthetic, amp={amp}: best val Dice {result.best_score:.4f}, "
              f"last {result.history[-1]['val_dice']:.4f}", flush=True)
