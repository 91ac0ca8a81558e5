/*
 * internal.h: everything the library shares between its layers.  Users
 * include only mitogen.h.
 */
#ifndef MG_INTERNAL_H
#define MG_INTERNAL_H

#include "core/core.h"
#include "mitogen.h"
#include "router/router.h"
#include "wire/wire.h"

#endif
