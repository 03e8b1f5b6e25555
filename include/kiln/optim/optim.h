// The whole optim layer: the Optimizer base, SGD/Adam/AdamW/RMSprop and the LR schedulers.
#pragma once

#include "kiln/optim/optimizer.h"
#include "kiln/optim/optimizers.h"
#include "kiln/optim/schedulers.h"
