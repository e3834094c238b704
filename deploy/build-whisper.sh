#!/usr/bin/env bash
# Builds whisper.cpp for this machine as shared libraries LockN can load (Transcription:NativeRuntimePath).
#
#   deploy/build-whisper.sh [--source DIR | --download] [--commit SHA] [--out DIR] [--cpu | --cuda] [--jobs N]
#
#   --source DIR   a whisper.cpp checkout or unpacked source archive you supply (no network needed)
#   --download     fetch the pinned commit's source archive from GitHub (needs curl or wget)
#   --commit SHA   the commit to build (default: the one LockN is tested with); a --source checkout is checked out at it
#   --out DIR      where the libraries go (default: ./whisper-runtime); printed as the setting to use at the end
#   --cpu | --cuda the backend; by default CUDA when nvcc and an NVIDIA GPU are present, else the CPU
#
# The CPU build targets this machine's own instruction sets (-march=native: AVX-512, AVX2, NEON…), so build it on
# the machine that will run it (or on one with the same CPU). Needs cmake, a C/C++ compiler and libgomp (OpenMP);
# CUDA needs the CUDA toolkit. The result is a directory of libwhisper.so and libggml*.so, nothing else.
set -euo pipefail

# whisper.cpp v1.9.3-50: the commit ../shared/whisper-native was built from and LockN's tests run against.
PINNED_COMMIT=233fe1fc9b48a09e361d3594520838ca266537fe

source_dir=""
download=false
commit="$PINNED_COMMIT"
out="$PWD/whisper-runtime"
backend=auto
jobs="$(nproc 2>/dev/null || echo 2)"

die() { echo "build-whisper: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --source) source_dir="${2:?--source needs a directory}"; shift 2 ;;
    --download) download=true; shift ;;
    --commit) commit="${2:?--commit needs a SHA}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --cpu) backend=cpu; shift ;;
    --cuda) backend=cuda; shift ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ -n "$source_dir" || "$download" == true ]] || die "pass --source DIR (a whisper.cpp checkout) or --download (see --help)"
command -v cmake >/dev/null || die "cmake is not installed"
command -v c++ >/dev/null || command -v g++ >/dev/null || command -v clang++ >/dev/null || die "no C++ compiler (install g++ or clang)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ "$download" == true ]]; then
  url="https://github.com/ggml-org/whisper.cpp/archive/$commit.tar.gz"
  echo "build-whisper: downloading $url"
  if command -v curl >/dev/null; then curl -fsSL "$url" -o "$work/src.tar.gz"
  elif command -v wget >/dev/null; then wget -q "$url" -O "$work/src.tar.gz"
  else die "--download needs curl or wget"; fi
  mkdir "$work/src" && tar -xzf "$work/src.tar.gz" -C "$work/src" --strip-components=1
  source_dir="$work/src"
elif [[ -d "$source_dir/.git" ]] || git -C "$source_dir" rev-parse --git-dir >/dev/null 2>&1; then
  # A checkout (or a bare mirror): build the pinned commit from a clean copy, whatever is checked out there.
  git -C "$source_dir" cat-file -e "$commit^{commit}" 2>/dev/null || die "$source_dir does not have commit $commit (fetch it, or pass --commit)"
  mkdir "$work/src"
  git -C "$source_dir" archive "$commit" | tar -x -C "$work/src"
  source_dir="$work/src"
else
  echo "build-whisper: building $source_dir as it is (not a git checkout: cannot check it is commit $commit)"
fi
[[ -f "$source_dir/include/whisper.h" ]] || die "$source_dir is not whisper.cpp's source (no include/whisper.h)"

if [[ "$backend" == auto ]]; then
  if command -v nvcc >/dev/null && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then backend=cuda; else backend=cpu; fi
fi

flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DGGML_OPENMP=ON
       -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=OFF -DWHISPER_BUILD_SERVER=OFF
       -DCMAKE_INSTALL_RPATH='$ORIGIN' -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON)
if [[ "$backend" == cuda ]]; then
  command -v nvcc >/dev/null || die "--cuda needs the CUDA toolkit (nvcc on the PATH)"
  flags+=(-DGGML_CUDA=ON)
fi

echo "build-whisper: building whisper.cpp $commit for $backend with $jobs jobs"
cmake -S "$source_dir" -B "$work/build" "${flags[@]}" >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log" >&2; die "cmake configure failed"; }
cmake --build "$work/build" --target whisper -j "$jobs" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; die "build failed"; }

mkdir -p "$out"
find "$work/build" \( -name 'libwhisper.so*' -o -name 'libggml*.so*' \) -exec cp -a {} "$out/" \;
[[ -e "$out/libwhisper.so" || -n "$(ls "$out"/libwhisper.so.* 2>/dev/null)" ]] || die "the build produced no libwhisper.so"
out="$(cd "$out" && pwd)"

echo "build-whisper: installed into $out:"
ls -1 "$out" | sed 's/^/  /'
echo
echo "Use it with:  Transcription:NativeRuntimePath=$out"
echo "  (environment: LOCKN_Transcription__NativeRuntimePath=$out)"
