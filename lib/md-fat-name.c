/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FAT names: what a long name may hold, the 8.3 basis name and its ~N
 * tail (the rules of Linux's vfat and Windows), the NT lower-case flags,
 * long-name slots and their checksum, case folding, and the way back to
 * UTF-8 for listings.
 */
#include <string.h>

#include "md-fat-internal.h"

/* ---- UTF-8 <-> UTF-16 --------------------------------------------------------- */

/* One code point of strict UTF-8 at @s (@len bytes left): its length, or 0
 * when the bytes are not UTF-8 (overlong, surrogate, over U+10FFFF, cut). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t n, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        c &= 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        c &= 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

static size_t utf8_put(uint32_t c, char *out)
{
    unsigned char *o = (unsigned char *)out;

    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xc0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (c >> 18));
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (c & 0x3f));
    return 4;
}

void md_fat_utf16_to_utf8(const uint16_t *u, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        uint32_t c = u[i];
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && u[i + 1] >= 0xdc00 && u[i + 1] <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (u[i + 1] - 0xdc00);
            i++;
        } else if (c >= 0xd800 && c <= 0xdfff) {
            c = 0xfffd;
        }
        o += utf8_put(c, out + o);
    }
    out[o] = '\0';
}

/* ---- checks --------------------------------------------------------------------- */

static bool bad_char(uint32_t c)
{
    return c < 0x20 || c == 0x7f || c == '"' || c == '*' || c == '/' || c == ':' || c == '<' ||
           c == '>' || c == '?' || c == '\\' || c == '|';
}

int md_fat_name_parse(const char *s, size_t len, struct md_fat_name *nm, const char **why)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    memset(nm, 0, sizeof(*nm));
    while (i < len) {
        uint32_t c;
        size_t k = utf8_decode(p + i, len - i, &c);

        if (!k) {
            *why = "is not UTF-8 (FAT stores long names as UTF-16)";
            return -EINVAL;
        }
        if (bad_char(c)) {
            *why = c < 0x20 || c == 0x7f ? "holds a control character, which FAT names cannot hold"
                                         : "holds one of \"*/:<>?\\|, which FAT names cannot hold";
            return -EINVAL;
        }
        if (nm->n + (c >= 0x10000 ? 2 : 1) > FAT_LFN_MAX) {
            *why = "is longer than the 255 UTF-16 units of a FAT long name";
            return -EINVAL;
        }
        if (c >= 0x10000) {
            c -= 0x10000;
            nm->u[nm->n++] = (uint16_t)(0xd800 + (c >> 10));
            nm->u[nm->n++] = (uint16_t)(0xdc00 + (c & 0x3ff));
        } else {
            nm->u[nm->n++] = (uint16_t)c;
        }
        i += k;
    }
    if (!nm->n) {
        *why = "is empty";
        return -EINVAL;
    }
    if (nm->u[nm->n - 1] == '.' || nm->u[nm->n - 1] == ' ') {
        /* Windows and Linux drop them: the name would not be the one stored */
        *why = "ends with a dot or a space, which FAT drops";
        return -EINVAL;
    }
    return 0;
}

/* ---- case --------------------------------------------------------------------- */

uint16_t md_fat_upcase(uint16_t c)
{
    if (c < 0x80)
        return c >= 'a' && c <= 'z' ? (uint16_t)(c - 32) : c;
    if (c >= 0xe0 && c <= 0xfe && c != 0xf7)
        return (uint16_t)(c - 32);
    if (c == 0xff)
        return 0x178;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177))
        return (uint16_t)(c & ~1u);
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
        return (uint16_t)((c & 1) ? c : c - 1);
    if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2)
        return (uint16_t)(c - 32);
    if (c == 0x3c2)
        return 0x3a3;
    if (c >= 0x430 && c <= 0x44f)
        return (uint16_t)(c - 32);
    if (c >= 0x450 && c <= 0x45f)
        return (uint16_t)(c - 80);
    return c;
}

int md_fat_name_cmp_ci(const char *a, const char *b)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    size_t lx = strlen(a), ly = strlen(b);

    while (lx && ly) {
        uint32_t cx, cy;
        size_t kx = utf8_decode(x, lx, &cx), ky = utf8_decode(y, ly, &cy);

        if (!kx) {
            cx = *x;
            kx = 1;
        }
        if (!ky) {
            cy = *y;
            ky = 1;
        }
        if (cx < 0x10000)
            cx = md_fat_upcase((uint16_t)cx);
        if (cy < 0x10000)
            cy = md_fat_upcase((uint16_t)cy);
        if (cx != cy)
            return cx < cy ? -1 : 1;
        x += kx;
        y += ky;
        lx -= kx;
        ly -= ky;
    }
    return lx ? 1 : ly ? -1 : 0;
}

/* ---- short names ------------------------------------------------------------------ */

struct sfn_info {
    bool lower, upper, valid; /* all letters lower / upper; the character is itself in 8.3 */
};

/* One UTF-16 unit as a short-name byte (0: left out).  As Linux's vfat:
 * dots and spaces are left out, "+,;=[]" become '_', letters are upper
 * case; anything outside ASCII becomes '_' too (no code page is assumed). */
static uint8_t sfn_char(uint16_t c, struct sfn_info *in)
{
    if (c == '.' || c == ' ') {
        in->valid = false;
        return 0;
    }
    if (c >= 0x80 || c == '+' || c == ',' || c == ';' || c == '=' || c == '[' || c == ']') {
        in->valid = false;
        return '_';
    }
    if (c >= 'a' && c <= 'z') {
        in->upper = false;
        return (uint8_t)(c - 32);
    }
    if (c >= 'A' && c <= 'Z')
        in->lower = false;
    return (uint8_t)c;
}

void md_fat_name_basis(struct md_fat_name *nm)
{
    struct sfn_info bi = { true, true, true }, ei = { true, true, true };
    const uint16_t *u = nm->u;
    uint32_t n = nm->n, i, sz = n, ext = n, baselen = 0, extlen = 0;
    bool fits = true;

    /* the extension: after the last dot, unless only dots and spaces
     * precede it (".bashrc" has none: Windows 95 made it the base) */
    for (i = n; i-- > 0;) {
        if (u[i] == '.') {
            uint32_t j = 0;
            while (j < i && (u[j] == '.' || u[j] == ' '))
                j++;
            if (j != i) {
                sz = i;
                ext = i + 1;
            }
            break;
        }
    }
    memset(nm->sfn, ' ', 11);
    for (i = 0; i < sz; i++) {
        uint8_t c = sfn_char(u[i], &bi);
        if (!c)
            continue;
        if (baselen == 8) {
            fits = false;
            break;
        }
        nm->sfn[baselen++] = c;
    }
    for (i = ext; i < n; i++) {
        uint8_t c = sfn_char(u[i], &ei);
        if (!c)
            continue;
        if (extlen == 3) {
            fits = false;
            break;
        }
        nm->sfn[8 + extlen++] = c;
    }
    if (!baselen) /* a name of dots and spaces only: refused before, but never an empty base */
        nm->sfn[baselen++] = '_';
    nm->lcase = 0;
    nm->exact = fits && bi.valid && ei.valid;
    nm->lfn = true;
    if (nm->exact && (bi.upper || bi.lower) && (ei.upper || ei.lower)) {
        /* one case in the base and one in the extension: the NT flags say which */
        if (!bi.upper)
            nm->lcase |= FAT_CASE_LOWER_BASE;
        if (!ei.upper)
            nm->lcase |= FAT_CASE_LOWER_EXT;
        nm->lfn = false;
    }
}

void md_fat_name_tail(const uint8_t basis[11], uint32_t n, uint8_t out[11])
{
    char digits[12];
    uint32_t baselen = 0, nd = 0, keep, i;

    while (baselen < 8 && basis[baselen] != ' ')
        baselen++;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && nd < 7);
    keep = 7 - nd;       /* base characters left beside '~' and the digits */
    if (keep > baselen)
        keep = baselen;
    memset(out, ' ', 8);
    memcpy(out, basis, keep);
    out[keep] = '~';
    for (i = 0; i < nd; i++)
        out[keep + 1 + i] = (uint8_t)digits[nd - 1 - i];
    memcpy(out + 8, basis + 8, 3);
}

uint8_t md_fat_lfn_checksum(const uint8_t sfn[11])
{
    uint8_t s = 0;
    int i;

    for (i = 0; i < 11; i++)
        s = (uint8_t)(((s & 1) << 7) + (s >> 1) + sfn[i]);
    return s;
}

/* The @k-th unit of a long name in its slots: the name, one NUL when it
 * does not fill the last slot, then 0xFFFF. */
static uint16_t lfn_unit(const struct md_fat_name *nm, uint32_t k)
{
    if (k < nm->n)
        return nm->u[k];
    return k == nm->n ? 0x0000 : 0xffff;
}

void md_fat_lfn_encode(const struct md_fat_name *nm, uint8_t *out)
{
    static const uint8_t pos[FAT_LFN_CHARS] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
    uint32_t slots = md_fat_lfn_slots(nm->n), s, j;
    uint8_t sum = md_fat_lfn_checksum(nm->sfn);

    for (s = slots; s >= 1; s--) {
        uint8_t *e = out + (size_t)(slots - s) * FAT_DIRENT;

        memset(e, 0, FAT_DIRENT);
        e[0] = (uint8_t)(s | (s == slots ? 0x40 : 0));
        e[11] = FAT_ATTR_LFN;
        e[13] = sum;
        for (j = 0; j < FAT_LFN_CHARS; j++)
            md_put_le16(e + pos[j], lfn_unit(nm, (s - 1) * FAT_LFN_CHARS + j));
    }
}

/* ---- short names for display ------------------------------------------------------ */

/* Code page 437's upper half, for short names other tools wrote. */
static const uint16_t cp437_high[128] = {
    0xc7, 0xfc, 0xe9, 0xe2, 0xe4, 0xe0, 0xe5, 0xe7, 0xea, 0xeb, 0xe8, 0xef, 0xee, 0xec, 0xc4, 0xc5,
    0xc9, 0xe6, 0xc6, 0xf4, 0xf6, 0xf2, 0xfb, 0xf9, 0xff, 0xd6, 0xdc, 0xa2, 0xa3, 0xa5, 0x20a7, 0x192,
    0xe1, 0xed, 0xf3, 0xfa, 0xf1, 0xd1, 0xaa, 0xba, 0xbf, 0x2310, 0xac, 0xbd, 0xbc, 0xa1, 0xab, 0xbb,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557,
    0x255d, 0x255c, 0x255b, 0x2510, 0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f,
    0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559,
    0x2558, 0x2552, 0x2553, 0x256b, 0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
    0x3b1, 0xdf, 0x393, 0x3c0, 0x3a3, 0x3c3, 0xb5, 0x3c4, 0x3a6, 0x398, 0x3a9, 0x3b4, 0x221e, 0x3c6,
    0x3b5, 0x2229, 0x2261, 0xb1, 0x2265, 0x2264, 0x2320, 0x2321, 0xf7, 0x2248, 0xb0, 0x2219, 0xb7,
    0x221a, 0x207f, 0xb2, 0x25a0, 0xa0,
};

static size_t sfn_part(const uint8_t *p, size_t len, bool lower, bool first, char *out)
{
    size_t o = 0, n = len, i;

    while (n && p[n - 1] == ' ')
        n--;
    for (i = 0; i < n; i++) {
        uint32_t c = p[i];
        if (first && i == 0 && c == 0x05)
            c = 0xe5; /* a first byte 0xE5 is stored as 0x05 */
        if (c >= 0x80)
            c = cp437_high[c - 0x80];
        else if (c < 0x20 || c == 0x7f || c == '/')
            c = '?'; /* '/' too: a name is one path component */
        else if (lower && c >= 'A' && c <= 'Z')
            c += 32;
        o += utf8_put(c, out + o);
    }
    return o;
}

void md_fat_sfn_display(const uint8_t sfn[11], uint8_t lcase, char *out)
{
    size_t o = sfn_part(sfn, 8, lcase & FAT_CASE_LOWER_BASE, true, out);
    char ext[16];
    size_t e = sfn_part(sfn + 8, 3, lcase & FAT_CASE_LOWER_EXT, false, ext);

    if (e) {
        out[o++] = '.';
        memcpy(out + o, ext, e);
        o += e;
    }
    out[o] = '\0';
}

void md_fat_sfn_plain(const uint8_t sfn[11], char *out)
{
    size_t o = 0, i, n = 8, e = 3;

    while (n && sfn[n - 1] == ' ')
        n--;
    while (e && sfn[8 + e - 1] == ' ')
        e--;
    for (i = 0; i < n; i++)
        out[o++] = (char)(i == 0 && sfn[0] == 0x05 ? 0xe5 : sfn[i]);
    if (e) {
        out[o++] = '.';
        for (i = 0; i < e; i++)
            out[o++] = (char)sfn[8 + i];
    }
    out[o] = '\0';
}
