/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libminidistro: build bootable Linux images without root.  Umbrella header. */
#ifndef LIBMINIDISTRO_MINIDISTRO_H
#define LIBMINIDISTRO_MINIDISTRO_H

#include <libminidistro/md-version.h>
#include "md-common.h"
#include "md-ctx.h"
#include "md-tree.h"
#include "md-cpio.h"
#include "md-image.h"
#include "md-ext.h"
#include "md-fat.h"
#include "md-extlinux.h"
#include "md-disk.h"
#include "md-boot.h"
#include "md-uki.h"
#include "md-distro.h"

#endif
