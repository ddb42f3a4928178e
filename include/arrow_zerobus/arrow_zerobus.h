// Umbrella header: the whole public API of arrow_zerobus.
#pragma once

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/config.h"
#include "arrow_zerobus/delta_types.h"
#include "arrow_zerobus/debug.h"
#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/flight_schema.h"
#include "arrow_zerobus/log.h"
#include "arrow_zerobus/result.h"
#include "arrow_zerobus/schema.h"
#include "arrow_zerobus/stream.h"
#include "arrow_zerobus/telemetry.h"
#include "arrow_zerobus/version.h"
#include "arrow_zerobus/wrapper.h"
