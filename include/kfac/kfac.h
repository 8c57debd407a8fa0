// Umbrella header: everything a user of the library needs.
#pragma once

#include "kfac/capture.h"
#include "kfac/curvature/curvature.h"
#include "kfac/curvature/eigen_corrected.h"
#include "kfac/curvature/kfac_curvature.h"
#include "kfac/curvature/per_example.h"
#include "kfac/curvature/tkfac_curvature.h"
#include "kfac/curvature/registry.h"
#include "kfac/errors.h"
#include "kfac/layer_kind.h"
#include "kfac/likelihood.h"
#include "kfac/nn/layers.h"
#include "kfac/optim/kfac_optimizer.h"
#include "kfac/options.h"
#include "kfac/preconditioner.h"
