// litelens/litelens.h: everything in one include.
#pragma once

#include "litelens/decode.h"
#include "litelens/diff.h"
#include "litelens/dtype.h"
#include "litelens/error.h"
#include "litelens/export.h"
#include "litelens/layer.h"
#include "litelens/metadata.h"
#include "litelens/model.h"
#include "litelens/patch.h"
#include "litelens/suggest.h"
#include "litelens/summary.h"
#include "litelens/value.h"
#include "litelens/version.h"
