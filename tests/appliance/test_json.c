/* The strict JSON reader and the writer (appliance/json.c). */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "appliance/json.h"
#include "tests/lib/checkmain.h"

static int parse(const char *s, struct json **j)
{
	char err[128];
	return json_parse(s, strlen(s), j, err, sizeof(err));
}

START_TEST(parses_values)
{
	struct json *j;
	long long v;

	ck_assert_int_eq(parse(" {\"cmd\":\"show\",\"n\":-12,\"f\":1.5e2,\"b\":true,\"z\":null,"
			       "\"a\":[1,\"x\",{}],\"u\":\"\\u00e9\\ud83d\\ude00\\n\"} ",
			       &j),
			 0);
	ck_assert_str_eq(json_get_str(j, "cmd"), "show");
	ck_assert_int_eq(json_get_int(j, "n", &v), 0);
	ck_assert_int_eq(v, -12);
	ck_assert_int_eq(json_get_int(j, "f", &v), -EINVAL);
	ck_assert(json_get(j, "f")->number == 150.0);
	ck_assert(json_get(j, "b")->boolean);
	ck_assert_int_eq(json_get(j, "z")->type, JSON_NULL);
	ck_assert_int_eq(json_get(j, "a")->n, 3);
	ck_assert_str_eq(json_get_str(j, "u"), "\xc3\xa9\xf0\x9f\x98\x80\n");
	ck_assert_int_eq(json_get_int(j, "missing", &v), -ENOENT);
	json_free(j);
}
END_TEST

static const char *bad[] = {
	"",
	"{",
	"{\"a\":1,}",
	"[1,]",
	"{\"a\" 1}",
	"01",
	"1.",
	".5",
	"-",
	"+1",
	"tru",
	"nul",
	"\"abc",
	"\"\\x\"",
	"\"\\u12\"",
	"\"\\ud800\"",
	"\"\\udc00\"",
	"\"a\x01\"",
	"\"\xff\"",
	"\"\xc0\xaf\"",
	"{\"a\":1,\"a\":2}",
	"{} {}",
	"[1] x",
	"{1:2}",
	"\"\\u0000\"",
	"1e999",
	"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
};

START_TEST(refuses_bad)
{
	struct json *j = NULL;
	ck_assert_msg(parse(bad[_i], &j) == -EINVAL, "accepted: %s", bad[_i]);
}
END_TEST

START_TEST(writer_round_trip)
{
	struct json_buf b;
	struct json *j;

	json_buf_init(&b);
	json_obj_begin(&b);
	json_kv_str(&b, "s", "q\"b\\\n\x01\xff");
	json_kv_int(&b, "i", -5);
	json_key(&b, "a");
	json_arr_begin(&b);
	json_uint(&b, 1);
	json_bool(&b, false);
	json_null(&b);
	json_obj_begin(&b);
	json_obj_end(&b);
	json_arr_end(&b);
	json_kv_double(&b, "d", 0.25);
	json_obj_end(&b);
	ck_assert(!b.oom);
	ck_assert_str_eq(
	    b.s,
	    "{\"s\":\"q\\\"b\\\\\\n\\u0001\xef\xbf\xbd\",\"i\":-5,\"a\":[1,false,null,{}],\"d\":0.25}");
	ck_assert_int_eq(parse(b.s, &j), 0);
	ck_assert_str_eq(json_get_str(j, "s"), "q\"b\\\n\x01\xef\xbf\xbd");
	json_buf_free(&b);
	json_buf_init(&b);
	json_value(&b, j);
	ck_assert_str_eq(
	    b.s,
	    "{\"s\":\"q\\\"b\\\\\\n\\u0001\xef\xbf\xbd\",\"i\":-5,\"a\":[1,false,null,{}],\"d\":0.25}");
	json_buf_free(&b);
	json_free(j);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("json");

	tcase_add_test(tc, parses_values);
	tcase_add_loop_test(tc, refuses_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, writer_round_trip);
	suite_add_tcase(s, tc);
	return check_main(s);
}
