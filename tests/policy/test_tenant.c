/* The tenant lowering pass (policy/tenant.c) and the NAT half of the
 * isolation proof (policy/isolation.c), through the real front end. */
#include <check.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/lib/irtest.h"
#include "policy/tenant.h"
#include "tests/lib/checkmain.h"

#define TEST_FILE IRTEST_FILE

/* Two tenants on the same network, as in tests/nat/lab_tenants.sh. */
static const char *const two_tenants =
    "zone uplink { interface \"up0\" }\n"
    "tenant a { segment lan { interface \"ta0\" address { 10.0.1.0/24, fd00:a::/64 } }\n"
    "  pass from lan to uplink }\n"
    "tenant b { segment lan { interface \"tb0\" address 10.0.1.0/24 }\n"
    "  segment dmz { interface \"tb-dmz*\" address 10.0.9.0/24 }\n"
    "  pass from lan to uplink }\n";

static bool ifname_is(const struct ir_value *v, const char *name)
{
	struct ir_value want = ir_value_ifname(name);
	return v->len == want.len && !memcmp(v->data, want.data, v->len);
}

/* The element of a one-field set whose key is interface `name`. */
static const struct ir_set_elem *elem_for(const struct ir_set *s, const char *name)
{
	for (size_t i = 0; i < s->n_elems; i++)
		if (ifname_is(&s->elems[i].key[0], name))
			return &s->elems[i];
	return NULL;
}

static bool has_pair(const struct ir_set *s, const char *iif, const char *oif)
{
	for (size_t i = 0; i < s->n_elems; i++)
		if (ifname_is(&s->elems[i].key[0], iif) && ifname_is(&s->elems[i].key[1], oif))
			return true;
	return false;
}

static bool has_warning(const char *needle)
{
	for (size_t i = 0; i < irtest_diags.n; i++)
		if (irtest_diags.v[i].severity == POLICY_WARNING &&
		    strstr(irtest_diags.v[i].message, needle))
			return true;
	return false;
}

static bool has_error_at(uint32_t line, const char *needle)
{
	for (size_t i = 0; i < irtest_diags.n; i++)
		if (irtest_diags.v[i].severity == POLICY_ERROR &&
		    irtest_diags.v[i].loc.line == line && strstr(irtest_diags.v[i].message, needle))
			return true;
	return false;
}

START_TEST(test_zone_map_directional)
{
	struct ir_table *t = irtest_lower(two_tenants, NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_set *zm = irtest_set(t, POLICY_MAP_TENANT_ZONE);
	ck_assert_ptr_nonnull(zm);
	ck_assert_int_eq(zm->data, IR_DATA_VALUE);
	uint16_t za, zb, zd;
	memcpy(&za, elem_for(zm, "ta0")->data.data, 2);
	memcpy(&zb, elem_for(zm, "tb0")->data.data, 2);
	ck_assert_ptr_nonnull(elem_for(zm, "tb-dmz"));
	memcpy(&zd, elem_for(zm, "tb-dmz")->data.data, 2);
	ck_assert_uint_ne(za, zb);              /* overlapping tenants, different zones */
	ck_assert_uint_eq(zb, zd);              /* one zone per tenant, not per segment */
	ck_assert(zm->flags & IR_SET_INTERVAL); /* "tb-dmz*" is a wildcard */
	const struct ir_chain *raw = ir_chain_find(t, POLICY_CHAIN_TENANT_RAW);
	ck_assert_ptr_nonnull(raw);
	ck_assert_int_eq(raw->hook, IR_HOOK_PREROUTING);
	ck_assert_int_eq(raw->priority, -300);
	ck_assert_uint_eq(raw->n_rules, 1); /* ONE map lookup, whatever the tenant count */
	const struct ir_stmt *s = &raw->rules[0].stmts[0];
	ck_assert_int_eq(s->kind, IR_S_SET_FROM_MAP);
	ck_assert_int_eq(s->target, IR_CT_ORIGINAL_ZONE);
	ck_assert(ir_field_desc(IR_CT_ORIGINAL_ZONE)->ct_original);
	/* the appliance's own answers are rerouted by the restored mark */
	const struct ir_chain *out = ir_chain_find(t, POLICY_CHAIN_TENANT_OUT);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(out->type, IR_CHAIN_ROUTE);
	ck_assert_int_eq(out->hook, IR_HOOK_OUTPUT);
	ck_assert_int_eq(out->rules[0].stmts[0].target, IR_META_MARK);
	irtest_done(t);
}
END_TEST

START_TEST(test_segment_antispoof_and_mark)
{
	struct ir_table *t = irtest_lower(two_tenants, NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_set *seg = irtest_set(t, POLICY_MAP_TENANT_SEGMENT);
	const struct ir_set_elem *e = elem_for(seg, "ta0");
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->verdict.kind, IR_V_GOTO);
	const struct ir_chain *c = ir_chain_find(t, e->verdict.chain);
	ck_assert_ptr_nonnull(c);
	/* v4 and v6 anti-spoofing drops, counted, then the marks */
	ck_assert_uint_eq(c->n_rules, 4);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(c->rules[i].verdict.kind, IR_V_DROP);
		ck_assert_int_eq(c->rules[i].stmts[0].kind, IR_S_COUNTER);
		ck_assert_str_eq(c->rules[i].comment, POLICY_COMMENT_ANTISPOOF "a.lan");
		const struct ir_match *m = &c->rules[i].matches[1];
		ck_assert_int_eq(m->kind, IR_M_LOOKUP);
		ck_assert_int_eq(m->op, IR_OP_NEQ);
	}
	const struct ir_set *src4 = &t->sets[c->rules[0].matches[1].set];
	ck_assert_uint_eq(src4->n_elems, 1);
	ck_assert_uint_eq(src4->elems[0].key[0].data[0], 10);
	const struct ir_set *src6 = &t->sets[c->rules[1].matches[1].set];
	ck_assert_uint_eq(src6->n_elems, 3); /* ::, fd00:a::/64, fe80::/10 */
	const struct ir_stmt *mark = &c->rules[2].stmts[0];
	ck_assert_int_eq(mark->target, IR_META_MARK);
	ck_assert_uint_eq(irtest_u32(&mark->value), 1u << POLICY_TENANT_MARK_SHIFT);
	ck_assert_int_eq(c->rules[3].stmts[0].target, IR_CT_MARK);
	irtest_done(t);
}
END_TEST

START_TEST(test_restore_map_one_mark_per_tenant)
{
	struct ir_table *t = irtest_lower(two_tenants, NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_set *r = irtest_set(t, POLICY_MAP_TENANT_RESTORE);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->n_elems, 2);
	uint32_t seen = 0;
	for (size_t i = 0; i < r->n_elems; i++) {
		uint32_t k = irtest_u32(&r->elems[i].key[0]), v = irtest_u32(&r->elems[i].data);
		ck_assert_uint_eq(k, v);
		seen |= 1u << (k >> POLICY_TENANT_MARK_SHIFT);
	}
	ck_assert_uint_eq(seen, (1u << 1) | (1u << 2)); /* tenants 1 and 2 */
	irtest_done(t);
}
END_TEST

START_TEST(test_pairs_and_grants)
{
	static const char *const grant =
	    "zone uplink { interface \"up0\" }\n"
	    "tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 }\n"
	    "  segment web { interface \"ta1\" address 10.0.2.0/24 } }\n"
	    "tenant b { segment lan { interface \"tb0\" address 10.0.1.0/24 } }\n"
	    "pass from a.web to b.lan service tcp port 5432\n";
	struct ir_table *t = irtest_lower(grant, NULL);
	ck_assert_ptr_nonnull(t);
	const struct ir_set *p = irtest_set(t, POLICY_SET_TENANT_PAIRS);
	ck_assert_ptr_nonnull(p);
	ck_assert(has_pair(p, "ta0", "ta1")); /* same tenant */
	ck_assert(has_pair(p, "ta1", "ta0"));
	ck_assert(has_pair(p, "ta1", "tb0"));  /* the grant */
	ck_assert(!has_pair(p, "tb0", "ta1")); /* only the direction granted */
	ck_assert(!has_pair(p, "ta0", "tb0")); /* not granted */
	ck_assert_uint_eq(p->n_elems, 4 + 1 + 1);
	const struct ir_chain *f = ir_chain_find(t, POLICY_CHAIN_TENANT_FORWARD);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(f->hook, IR_HOOK_FORWARD);
	ck_assert_int_lt(f->priority, 0); /* before the policy's forward chain */
	const struct ir_rule *drop = &f->rules[f->n_rules - 1];
	ck_assert_str_eq(drop->comment, POLICY_COMMENT_INTER_TENANT);
	ck_assert_int_eq(drop->verdict.kind, IR_V_DROP);
	ck_assert_int_eq(drop->stmts[0].kind, IR_S_COUNTER);
	irtest_done(t);
}
END_TEST

START_TEST(test_no_tenants_no_objects)
{
	struct ir_table *t = irtest_lower("zone a { interface \"a0\" }\npass from a to a\n", NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_null(ir_chain_find(t, POLICY_CHAIN_TENANT_RAW));
	ck_assert_ptr_null(irtest_set(t, POLICY_MAP_TENANT_ZONE));
	irtest_done(t);
}
END_TEST

START_TEST(test_emitted_text)
{
	struct ir_table *t = irtest_lower(two_tenants, NULL);
	ck_assert_ptr_nonnull(t);
	char *buf = irtest_emit_nft(t);
	ck_assert_ptr_nonnull(strstr(buf, "ct original zone set iifname map @tenant_zone"));
	ck_assert_ptr_nonnull(strstr(buf, "meta mark set ct mark map @tenant_mark_restore"));
	ck_assert_ptr_nonnull(strstr(buf, "iifname . oifname != @tenant_pairs counter drop"));
	free(buf);
	irtest_done(t);
}
END_TEST

/* ---- the NAT half of the isolation proof ---- */

START_TEST(test_nat_via_other_tenant)
{
	struct ir_table *t =
	    irtest_lower("zone uplink { interface \"up0\" }\n"
			 "tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 } }\n"
			 "tenant b { segment lan { interface \"tb0\" address 10.0.2.0/24 }\n"
			 "  nat masquerade out via a.lan }\n",
			 NULL);
	ck_assert_ptr_null(t);
	ck_assert(has_error_at(4, "goes out via zone 'a.lan' of tenant 'a'"));
	irtest_done(t);
}
END_TEST

START_TEST(test_global_forward_into_tenant)
{
	struct ir_table *t =
	    irtest_lower("zone uplink { interface \"up0\" }\n"
			 "tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 } }\n"
			 "pass from uplink to a.lan service tcp port 80\n"
			 "nat forward uplink tcp port 80 to 10.0.1.5\n",
			 NULL);
	ck_assert_ptr_null(t);
	ck_assert(has_error_at(4, "declare it inside tenant 'a'"));
	irtest_done(t);
}
END_TEST

START_TEST(test_forward_needs_filter_rule)
{
	static const char *const fwd =
	    "zone uplink { interface \"up0\" }\n"
	    "tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 }\n"
	    "  %s\n"
	    "  nat forward uplink tcp port 8080 to 10.0.1.5 port 80 }\n";
	char text[1024];
	snprintf(text, sizeof(text), fwd, "pass from uplink to lan service tcp port 443");
	struct ir_table *t = irtest_lower(text, NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert(has_warning("nothing can ever pass this port forward"));
	irtest_done(t);
	/* a forward with a public address also works from inside: that needs a rule too */
	snprintf(text, sizeof(text),
		 "zone uplink { interface \"up0\" }\n"
		 "tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 }\n"
		 "  pass from uplink to lan service tcp port 80\n  %s\n"
		 "  nat forward uplink tcp port 8080 on 203.0.113.1 to 10.0.1.5 port 80 }\n",
		 "");
	t = irtest_lower(text, NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert(has_warning("the hairpin of this port forward never passes"));
	irtest_done(t);
	snprintf(text, sizeof(text),
		 "zone uplink { interface \"up0\" }\n"
		 "tenant a { segment lan { interface \"ta0\" address 10.0.1.0/24 }\n"
		 "  pass from uplink to lan service tcp port 80\n  %s\n"
		 "  nat forward uplink tcp port 8080 on 203.0.113.1 to 10.0.1.5 port 80 }\n",
		 "pass from lan to lan service tcp port 80");
	t = irtest_lower(text, NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert(!has_warning("hairpin"));
	irtest_done(t);
	/* the filter sees the translated port, 80, not 8080 */
	snprintf(text, sizeof(text), fwd, "pass from uplink to lan service tcp port 80");
	t = irtest_lower(text, NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert(!has_warning("nothing can ever pass"));
	irtest_done(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tenant");
	TCase *tc = tcase_create("tenant");
	tcase_add_test(tc, test_zone_map_directional);
	tcase_add_test(tc, test_segment_antispoof_and_mark);
	tcase_add_test(tc, test_restore_map_one_mark_per_tenant);
	tcase_add_test(tc, test_pairs_and_grants);
	tcase_add_test(tc, test_no_tenants_no_objects);
	tcase_add_test(tc, test_emitted_text);
	tcase_add_test(tc, test_nat_via_other_tenant);
	tcase_add_test(tc, test_global_forward_into_tenant);
	tcase_add_test(tc, test_forward_needs_filter_rule);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
