/* Allocation and release of the syntax tree (policy/ast.h). */
#include <stdlib.h>
#include <string.h>

#include "policy/grow.h"
#include "policy/ast.h"

void policy_ast_init(struct policy_ast *a)
{
	memset(a, 0, sizeof(*a));
}

void *policy_ast_grow(void **v, size_t *n, size_t *cap, size_t elem)
{
	if (policy_grow(v, cap, *n, elem, 1))
		return NULL;
	char *slot = (char *)*v + (*n)++ * elem;
	memset(slot, 0, elem);
	return slot;
}

void policy_ast_ep_free(struct policy_ast_ep *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].name);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

void policy_service_term_free(struct policy_service_term *t)
{
	free(t->dports);
	free(t->icmp_types);
	t->dports = NULL;
	t->icmp_types = NULL;
	t->n_dports = t->n_icmp_types = 0;
}

void policy_ast_svc_free(struct policy_ast_svc *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		policy_service_term_free(&s->v[i].term);
	}
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static void free_inspect(struct policy_inspect_match *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].regex);
		free(m[i].name);
		free(m[i].log_prefix);
	}
	free(m);
}

void policy_ast_free(struct policy_ast *a)
{
	for (size_t i = 0; i < a->n_tenants; i++)
		free(a->tenants[i].name);
	free(a->tenants);
	for (size_t i = 0; i < a->n_defines; i++) {
		free(a->defines[i].name);
		policy_ast_ep_free(&a->defines[i].value);
	}
	free(a->defines);
	for (size_t i = 0; i < a->n_services; i++) {
		free(a->services[i].name);
		policy_ast_svc_free(&a->services[i].value);
	}
	free(a->services);
	for (size_t i = 0; i < a->n_zones; i++) {
		struct policy_ast_zone *z = &a->zones[i];
		free(z->name);
		for (size_t j = 0; j < z->n_ifnames; j++)
			free(z->ifnames[j]);
		free(z->ifnames);
		policy_ast_ep_free(&z->addrs);
	}
	free(a->zones);
	for (size_t i = 0; i < a->n_rules; i++) {
		struct policy_ast_rule *r = &a->rules[i];
		policy_ast_ep_free(&r->from);
		policy_ast_ep_free(&r->to);
		policy_ast_svc_free(&r->svc);
		free(r->log_prefix);
		free(r->label);
		free_inspect(r->inspect, r->n_inspect);
	}
	free(a->rules);
	for (size_t i = 0; i < a->n_defaults; i++) {
		free(a->defaults[i].from);
		free(a->defaults[i].to);
	}
	free(a->defaults);
	for (size_t i = 0; i < a->n_nats; i++) {
		free(a->nats[i].via);
		policy_ast_ep_free(&a->nats[i].from);
	}
	free(a->nats);
	for (size_t i = 0; i < a->n_vpns; i++) {
		struct policy_ast_vpn *v = &a->vpns[i];
		free(v->ifname);
		free(v->private_key_file);
		policy_ast_ep_free(&v->addresses);
		for (size_t j = 0; j < v->n_peers; j++) {
			struct policy_ast_peer *p = &v->peers[j];
			free(p->name);
			free(p->public_key);
			free(p->psk_file);
			free(p->endpoint);
			policy_ast_ep_free(&p->allowed_ips);
		}
		free(v->peers);
	}
	free(a->vpns);
	memset(a, 0, sizeof(*a));
}
