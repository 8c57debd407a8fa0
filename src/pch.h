// Precompiled header for the library's own sources (not installed).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize/archive.h>
#include <string>
#include <vector>
#include <memory>
