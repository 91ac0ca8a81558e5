/*
 * test_wire_buf.c: struct mg_buf, the capped growable buffer.
 */
#include <errno.h>

#include "runner.h"
#include "wire/wire.h"

TEST(buf_init_empty)
{
	struct mg_buf b;

	mg__buf_init(&b, 100);
	CHECK(b.data == NULL);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(b.cap, 0);
	CHECK_EQ(b.max, 100);
	mg__buf_fini(&b);
	mg__buf_fini(&b); /* twice is harmless */
	CHECK(b.data == NULL);
}

TEST(buf_put_be_helpers)
{
	static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02,
	                               0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 'x',  'y'};
	struct mg_buf b;

	mg__buf_init(&b, 1024);
	CHECK_OK(mg__buf_put_u8(&b, 0xab));
	CHECK_OK(mg__buf_put_u16(&b, 0x1234));
	CHECK_OK(mg__buf_put_u32(&b, 0xdeadbeef));
	CHECK_OK(mg__buf_put_u64(&b, 0x0102030405060708ull));
	CHECK_OK(mg__buf_put(&b, "xy", 2));
	CHECK_OK(mg__buf_put(&b, NULL, 0));
	CHECK_EQ(b.len, sizeof(want));
	CHECK_MEM(b.data, want, sizeof(want));
	CHECK_UINT(mg__be16(b.data + 1), ==, 0x1234);
	CHECK_UINT(mg__be32(b.data + 3), ==, 0xdeadbeef);
	CHECK_UINT(mg__be64(b.data + 7), ==, 0x0102030405060708ull);
	mg__buf_fini(&b);
}

TEST(buf_growth_keeps_content)
{
	struct mg_buf b;
	size_t i;

	mg__buf_init(&b, 1 << 20);
	for (i = 0; i < 100000; i++)
		CHECK_OK(mg__buf_put_u8(&b, (uint8_t)(i * 7)));
	CHECK_EQ(b.len, 100000);
	CHECK(b.cap >= b.len && b.cap <= b.max);
	for (i = 0; i < 100000; i++)
		CHECK_EQ(b.data[i], (uint8_t)(i * 7));
	mg__buf_fini(&b);
}

TEST(buf_max_is_exact)
{
	struct mg_buf b;

	mg__buf_init(&b, 10);
	CHECK_OK(mg__buf_put(&b, "0123456789", 10));
	CHECK_EQ(b.cap, 10); /* growth is clamped to the maximum */
	CHECK_EQ(mg__buf_put_u8(&b, 1), MG_ELIMIT);
	CHECK_EQ(mg__buf_reserve(&b, 1), MG_ELIMIT);
	CHECK_OK(mg__buf_reserve(&b, 0));
	CHECK_EQ(b.len, 10);
	CHECK_MEM(b.data, "0123456789", 10);
	mg__buf_fini(&b);

	mg__buf_init(&b, 10);
	CHECK_OK(mg__buf_put(&b, "01234567", 8));
	CHECK_EQ(mg__buf_put_u32(&b, 1), MG_ELIMIT);
	CHECK_EQ(b.len, 8); /* nothing of the failed put */
	CHECK_OK(mg__buf_put_u16(&b, 0x4142));
	CHECK_MEM(b.data, "01234567", 8);
	CHECK_MEM(b.data + 8, "AB", 2);
	mg__buf_fini(&b);
}

TEST(buf_max_zero)
{
	struct mg_buf b;

	mg__buf_init(&b, 0);
	CHECK_OK(mg__buf_reserve(&b, 0));
	CHECK_OK(mg__buf_put(&b, "", 0));
	CHECK_EQ(mg__buf_put_u8(&b, 0), MG_ELIMIT);
	CHECK(b.data == NULL);
	mg__buf_fini(&b);
}

TEST(buf_reserve_huge_is_limit_not_overflow)
{
	struct mg_buf b;

	mg__buf_init(&b, SIZE_MAX);
	CHECK_OK(mg__buf_put(&b, "abc", 3));
	CHECK_EQ(mg__buf_reserve(&b, SIZE_MAX), MG_ELIMIT);
	CHECK_EQ(mg__buf_reserve(&b, SIZE_MAX - 2), MG_ELIMIT);
	CHECK_EQ(b.len, 3);
	CHECK_MEM(b.data, "abc", 3);
	mg__buf_fini(&b);

	mg__buf_init(&b, 100);
	CHECK_EQ(mg__buf_reserve(&b, SIZE_MAX), MG_ELIMIT);
	CHECK(b.data == NULL);
	mg__buf_fini(&b);
}

TEST(buf_steal)
{
	struct mg_buf b;
	uint8_t *p;
	size_t n = 99;

	mg__buf_init(&b, 64);
	CHECK(mg__buf_steal(&b, &n) == NULL);
	CHECK_EQ(n, 0);
	CHECK_OK(mg__buf_put(&b, "hello", 5));
	p = mg__buf_steal(&b, &n);
	CHECK(p != NULL);
	CHECK_EQ(n, 5);
	CHECK_MEM(p, "hello", 5);
	CHECK(b.data == NULL);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(b.max, 64);
	/* The buffer is reusable after a steal. */
	CHECK_OK(mg__buf_put(&b, "again", 5));
	CHECK_MEM(b.data, "again", 5);
	mg__free(p);
	mg__buf_fini(&b);
}

TEST(buf_alloc_failure_leaves_buffer_intact)
{
	struct mg_buf b;

	mg__buf_init(&b, 1 << 20);
	CHECK_OK(mg__buf_put(&b, "abc", 3));
	mg__alloc_fail_after(1);
	CHECK_EQ(mg__buf_reserve(&b, 1000), -ENOMEM);
	CHECK_EQ(b.len, 3);
	CHECK_MEM(b.data, "abc", 3);
	CHECK_OK(mg__buf_reserve(&b, 1000)); /* only the one failed */
	mg__alloc_fail_after(0);
	mg__buf_fini(&b);

	mg__buf_init(&b, 100);
	mg__alloc_fail_after(1);
	CHECK_EQ(mg__buf_put_u8(&b, 1), -ENOMEM);
	CHECK(b.data == NULL);
	CHECK_EQ(b.len, 0);
	mg__alloc_fail_after(0);
	mg__buf_fini(&b);
}

TEST(be_helpers_raw)
{
	uint8_t p[8];

	mg__put_be16(p, 0xfffe);
	CHECK_EQ(p[0], 0xff);
	CHECK_EQ(p[1], 0xfe);
	mg__put_be32(p, 0x80000001u);
	CHECK_UINT(mg__be32(p), ==, 0x80000001u);
	mg__put_be64(p, 0xfedcba9876543210ull);
	CHECK_EQ(p[0], 0xfe);
	CHECK_EQ(p[7], 0x10);
	CHECK_UINT(mg__be64(p), ==, 0xfedcba9876543210ull);
}
