// The whole nn layer: Module and holders, every module, F:: functional forms, init and utils.
#pragma once

#include "kiln/nn/functional.h"
#include "kiln/nn/init.h"
#include "kiln/nn/module.h"
#include "kiln/nn/modules/activation.h"
#include "kiln/nn/modules/attention.h"
#include "kiln/nn/modules/container.h"
#include "kiln/nn/modules/conv.h"
#include "kiln/nn/modules/linear.h"
#include "kiln/nn/modules/loss.h"
#include "kiln/nn/modules/normalization.h"
#include "kiln/nn/modules/rnn.h"
#include "kiln/nn/options.h"
#include "kiln/nn/ordered_dict.h"
#include "kiln/nn/utils.h"
