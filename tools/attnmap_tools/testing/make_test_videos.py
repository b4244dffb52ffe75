#!/usr/bin/env python3
"""Writes the clips the video-path tests decode: a coloured square moving over a gradient, in a
lossless codec (PNG in .mov: RGB stored as is, so OpenCV and PyAV must agree to the byte) and in
lossy H.264 4:2:0 (.mp4: the YUV->RGB conversion of the two differs slightly), at assorted frame
counts, frame rates (2, 24, 30000/1001) and sizes that are no multiple of 16 or 28; plus broken files
for the error paths. Deterministic, so a failure is reproducible:
`python3 -m attnmap_tools.testing.make_test_videos OUT_DIR`.

Only .mp4/.mov: PyAV reports 0 frames for some .mkv, and the tests compare frame counts with it.
"""
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SEED = 20250301
NTSC = Fraction(30000, 1001)

# name -> (codec, frames, rate, width, height, mux options, colour tags of the stream). PNG clips may
# have odd sizes; 4:2:0 H.264 needs even ones. Colour tags (FFmpeg's AVColorSpace/AVColorRange numbers):
# colorspace 1 = BT.709, the usual tag of HD video; color_range 2 = full ("JPEG") range.
CLIPS = {
    "png_7f_24fps_151x97.mov": ("png", 7, Fraction(24), 151, 97, {}, {}),
    "png_8f_2fps_64x48.mov": ("png", 8, Fraction(2), 64, 48, {}, {}),
    "png_30f_ntsc_160x90.mov": ("png", 30, NTSC, 160, 90, {}, {}),
    "png_61f_ntsc_99x75.mov": ("png", 61, NTSC, 99, 75, {}, {}),
    "h264_61f_ntsc_150x98.mp4": ("libx264", 61, NTSC, 150, 98, {}, {}),
    "h264_30f_24fps_128x72.mp4": ("libx264", 30, Fraction(24), 128, 72, {}, {}),
    "h264_8f_2fps_150x98.mp4": ("libx264", 8, Fraction(2), 150, 98, {}, {}),
    "h264_7f_24fps_202x142.mp4": ("libx264", 7, Fraction(24), 202, 142, {}, {}),
    # The index (moov) before the data: cut in half it still opens, and the frames run out early.
    "h264_61f_faststart_150x98.mp4": ("libx264", 61, NTSC, 150, 98, {"movflags": "faststart"}, {}),
    "h264_full_range_8f_24fps_150x98.mp4": ("libx264", 8, Fraction(24), 150, 98, {}, {"color_range": 2}),
    "h264_bt709_8f_24fps_150x98.mp4": ("libx264", 8, Fraction(24), 150, 98, {},
                                       {"colorspace": 1, "color_primaries": 1, "color_trc": 1}),
}
LOSSLESS = [name for name, spec in CLIPS.items() if spec[0] == "png"]
LOSSY = [name for name, spec in CLIPS.items() if spec[0] != "png" and "colorspace" not in spec[6]]
# YUV with a BT.709 matrix: PyAV converts with it, OpenCV 4.6 with BT.601 whatever the tag (docs/video.md).
BT709 = [name for name, spec in CLIPS.items() if spec[6].get("colorspace") == 1]

# name -> what is wrong with it (the tests expect exit code 3 and one line naming the file).
BROKEN = {
    "truncated.mp4": "first half of an .mp4 whose index is at the end: no index, cannot be opened",
    "truncated_faststart.mp4": "first half of an .mp4 whose index is at the start: opens, frames end early",
    "garbage.mp4": "random bytes named .mp4",
    "empty.mp4": "zero bytes",
    "text.mp4": "a text file named .mp4",
    "unknown_codec.mov": "a PNG .mov whose codec tag is changed to one FFmpeg does not know",
    "header_only.mp4": "an .mp4 whose index (61 frames) is whole and whose frame data is cut off",
    "no_frames.mp4": "an .mp4 written with a video stream and no frames (the muxer then leaves no track)",
    "audio_only.mp4": "an .mp4 with an audio track and no video",
}


def frame_pixels(index, count, width, height):
    """RGB uint8 [height, width, 3]: a diagonal gradient with a square that crosses the frame and
    changes colour, so every frame differs and a wrong index shows."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack([255 * x / max(1, width - 1), 255 * y / max(1, height - 1),
                      127 + 100 * np.sin((x + y + 9 * index) / 13.0)], axis=-1)
    side = max(4, min(width, height) // 4)
    progress = index / max(1, count - 1)
    left = int(round(progress * (width - side)))
    top = int(round((0.5 + 0.4 * np.sin(2 * np.pi * progress)) * (height - side)))
    image[top:top + side, left:left + side] = [(37 * index) % 256, 255 - (53 * index) % 256, (91 * index + 40) % 256]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_clip(path, codec, count, rate, width, height, mux_options=None, colour=None):
    with av.open(str(path), "w", options=mux_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        if codec == "png":
            stream.pix_fmt = "rgb24"
        else:
            stream.pix_fmt = "yuv420p"
            # One thread: the encoded bytes do not depend on the machine's core count.
            stream.options = {"crf": "20", "preset": "medium", "threads": "1"}
        for key, value in (colour or {}).items():
            setattr(stream.codec_context, key, value)
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(frame_pixels(i, count, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def make_clips(out_dir):
    """Writes every clip in CLIPS. Returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (codec, count, rate, width, height, mux, colour) in CLIPS.items():
        paths[name] = out / name
        write_clip(paths[name], codec, count, rate, width, height, mux, colour)
    return paths


def _patch_codec_tag(data, old, new):
    """The codec tag sits in the sample description (stsd) entry right after its 4-byte size."""
    stsd = data.index(b"stsd")
    at = data.index(old, stsd)
    return data[:at] + new + data[at + len(old):]


def make_broken_files(out_dir):
    """Writes every file in BROKEN. Returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    paths = {name: out / name for name in BROKEN}

    write_clip(out / "whole.mp4", "libx264", 61, NTSC, 150, 98)
    whole = (out / "whole.mp4").read_bytes()
    paths["truncated.mp4"].write_bytes(whole[: len(whole) // 2])
    write_clip(out / "whole_faststart.mp4", "libx264", 61, NTSC, 150, 98, {"movflags": "faststart"})
    whole = (out / "whole_faststart.mp4").read_bytes()
    paths["truncated_faststart.mp4"].write_bytes(whole[: len(whole) // 2])
    paths["header_only.mp4"].write_bytes(whole[: whole.index(b"mdat") + 4])
    for name in ["whole.mp4", "whole_faststart.mp4"]:
        (out / name).unlink()

    paths["garbage.mp4"].write_bytes(rng.integers(0, 256, size=8192, dtype=np.uint8).tobytes())
    paths["empty.mp4"].write_bytes(b"")
    paths["text.mp4"].write_text("this is not a video, just text with an .mp4 name\n")

    write_clip(out / "png.mov", "png", 4, Fraction(24), 64, 48)
    paths["unknown_codec.mov"].write_bytes(_patch_codec_tag((out / "png.mov").read_bytes(), b"png ", b"zq9x"))
    (out / "png.mov").unlink()

    with av.open(str(paths["no_frames.mp4"]), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # the header is written on the first packet otherwise: no file at all

    with av.open(str(paths["audio_only.mp4"]), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (0.1 * np.sin(np.arange(16000) / 10.0)).astype(np.float32)[None, :]
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start:start + 1024].copy(), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "test_videos")
    made = {**make_clips(target), **make_broken_files(target / "broken")}
    print(f"wrote {len(made)} files under {target}")
