/*
 * internal.h: everything the library shares between its layers.  Users
 * include only mitogen.h.
 */
#ifndef MG_INTERNAL_H
#define MG_INTERNAL_H

#include "mitogen.h"
#include "wire/wire.h"
#include "core/core.h"
#include "router/router.h"

#endif
