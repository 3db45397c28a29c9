/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef LIBMINIDISTRO_MD_EXTLINUX_H
#define LIBMINIDISTRO_MD_EXTLINUX_H

#include "md-common.h"

MD_BEGIN_DECLS

/* To be written. */

MD_END_DECLS

#endif
