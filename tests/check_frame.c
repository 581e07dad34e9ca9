#include "config.h"
#include <check.h>
#include "chan_frame.h"
START_TEST(t_placeholder) { ck_assert_int_eq(chan_name_valid((const uint8_t *)"a", 1), 1); }
END_TEST
int main(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, t_placeholder);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
