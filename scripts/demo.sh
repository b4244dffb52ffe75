#!/usr/bin/env bash
# From a clean machine to a picture: installs dependencies, builds attnmap (which exports the
# bundled demo model with the installed torch), and draws heatmaps of the demo scene into out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh attnmap demo_model   # the tests build in scripts/test.sh
image=${1:-examples/scene_circle.png}
prompt=${2:-What color is the circle?}
build/attnmap run --image "$image" --prompt "$prompt" --out out/demo
echo "heatmaps: out/demo/grid.jpg and out/demo/layer_*.jpg; in a browser: out/demo/viewer.html; raw maps: out/demo/maps.npy; details: out/demo/attention.json"
