/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg disk <subcommand>: dispatches to the disk subcommands. */
#include <string.h>

#include "mdimg.h"

static const struct mdimg_cmd disk_cmds[] = {
    { "create", cmd_disk_create, "create a sparse image, partition table, filesystem (one step)" },
    { "format", cmd_disk_format, "make an ext2/3/4 or FAT filesystem on a partition or the whole image" },
    { "populate", cmd_disk_populate, "copy trees, spec files and cpio archives into a filesystem" },
    { "cp", cmd_disk_cp, "copy a file into or out of an image (IMG[:PART]:/path)" },
    { "ls", cmd_disk_ls, "list a directory in an image (IMG[:PART]:/path)" },
};

static void usage(FILE *f)
{
    size_t i;
    fprintf(f, "Usage: mdimg disk <subcommand> [options]\n\nSubcommands:\n");
    for (i = 0; i < sizeof(disk_cmds) / sizeof(disk_cmds[0]); i++)
        fprintf(f, "  %-9s %s\n", disk_cmds[i].name, disk_cmds[i].summary);
    fprintf(f, "\nRun 'mdimg disk <subcommand> --help' for its options.\n");
}

int cmd_disk(int argc, char **argv)
{
    static char name[64];
    size_t i;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (i = 0; i < sizeof(disk_cmds) / sizeof(disk_cmds[0]); i++) {
        if (!strcmp(argv[1], disk_cmds[i].name)) {
            snprintf(name, sizeof(name), "disk %s", disk_cmds[i].name);
            mdimg_set_cmdname(argv + 1, name);
            optind = 0;
            return disk_cmds[i].run(argc - 1, argv + 1);
        }
    }
    mdimg_err("unknown subcommand '%s' (create, format, populate, cp, ls)", argv[1]);
    return mdimg_try_help();
}
