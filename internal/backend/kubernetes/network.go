package kubernetes

import (
	"fmt"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Pod Security admission labels of the namespace.
const (
	psaEnforce        = "pod-security.kubernetes.io/enforce"
	psaEnforceVersion = "pod-security.kubernetes.io/enforce-version"
	psaWarn           = "pod-security.kubernetes.io/warn"
	psaWarnVersion    = "pod-security.kubernetes.io/warn-version"
	psaAudit          = "pod-security.kubernetes.io/audit"
	psaAuditVersion   = "pod-security.kubernetes.io/audit-version"
	// certIssuerAnnotation names the cert-manager ClusterIssuer of an Ingress.
	certIssuerAnnotation = "cert-manager.io/cluster-issuer"
)

// namespace renders the Namespace, enforcing the level every workload
// meets, warning at the same level, and auditing against restricted so a
// baseline namespace still records what keeps it from restricted.
func (r *renderer) namespace() {
	labels := r.stackLabels()
	labels[psaEnforce] = string(r.arts.Level)
	labels[psaEnforceVersion] = "latest"
	labels[psaWarn] = string(r.arts.Level)
	labels[psaWarnVersion] = "latest"
	labels[psaAudit] = string(Restricted)
	labels[psaAuditVersion] = "latest"
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: meta(r.ns, labels),
	}
	r.byFile[NamespaceFile] = append(r.byFile[NamespaceFile], ns)
}

// routes renders one Ingress per route of a rendered service, with TLS
// from cert-manager, and the policy that lets the ingress controller
// reach the routed port.
func (r *renderer) routes() error {
	byService := map[string][]int{}
	names := map[string]bool{}
	for _, rt := range r.d.Routes {
		s, ok := r.services[rt.Service]
		if !ok {
			if _, gone := r.omitted[rt.Service]; !gone {
				return fmt.Errorf("route %s names service %q, which the deployment does not have", rt.Host, rt.Service)
			}
			continue
		}
		if !containsInt(s.Ports, rt.Port) {
			return fmt.Errorf("route %s: service %s does not listen on port %d", rt.Host, s.Name, rt.Port)
		}
		name := s.Name
		for i := 2; names[name]; i++ {
			name = s.Name + "-" + strconv.Itoa(i)
		}
		names[name] = true
		ing := &networkingv1.Ingress{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
			ObjectMeta: meta(name, r.labels(s)),
			Spec: networkingv1.IngressSpec{
				TLS: []networkingv1.IngressTLS{{Hosts: []string{rt.Host}, SecretName: name + "-tls"}},
				Rules: []networkingv1.IngressRule{{
					Host: rt.Host,
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{
							Path:     "/",
							PathType: ptr(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
								Name: s.Name, Port: networkingv1.ServiceBackendPort{Number: int32(rt.Port)},
							}},
						}},
					}},
				}},
			},
		}
		if r.opts.IngressClass != "" {
			ing.Spec.IngressClassName = ptr(r.opts.IngressClass)
		}
		if r.opts.CertIssuer != "-" {
			ing.Annotations = map[string]string{certIssuerAnnotation: r.opts.CertIssuer}
		}
		r.add(fileOf(s.Component), ing)
		if !containsInt(byService[s.Name], rt.Port) {
			byService[s.Name] = append(byService[s.Name], rt.Port)
		}
	}
	for _, name := range sortedKeys(byService) {
		s := r.services[name]
		ports := byService[name]
		sort.Ints(ports)
		np := &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: meta("ingress-"+s.Name, r.labels(s)),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: r.selector(s)},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
						MatchLabels: map[string]string{corev1.LabelMetadataName: r.opts.IngressNamespace},
					}}},
					Ports: tcpPorts(ports),
				}},
			},
		}
		r.add(fileOf(s.Component), np)
	}
	return nil
}

// networkPolicies: nothing moves in the namespace unless allowed. Every pod
// may ask the cluster DNS; pods that share a network of the model reach
// each other on any port, as containers on one compose network do; pods on
// a network that is not internal may also reach any address outside (the
// internet, as compose's non-internal networks route out).
func (r *renderer) networkPolicies() {
	labels := r.stackLabels()
	policy := func(name string, spec networkingv1.NetworkPolicySpec) {
		r.byFile[NamespaceFile] = append(r.byFile[NamespaceFile], &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.ns, Labels: labels},
			Spec:       spec,
		})
	}
	both := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	policy("default-deny", networkingv1.NetworkPolicySpec{PolicyTypes: both})
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstr.FromInt32(53)
	policy("allow-dns", networkingv1.NetworkPolicySpec{
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		Egress: []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: r.opts.DNSNamespace}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: r.opts.DNSPodLabels},
			}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
		}},
	})
	used := map[string]bool{}
	for _, s := range r.order {
		for _, n := range effectiveNetworks(s) {
			used[n] = true
		}
	}
	for _, name := range sortedKeys(used) {
		members := &metav1.LabelSelector{MatchLabels: map[string]string{LabelNetworkPrefix + name: "true"}}
		spec := networkingv1.NetworkPolicySpec{
			PodSelector: *members,
			PolicyTypes: both,
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: members}}}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: members}}}},
		}
		// A network the model does not declare is compose's implicit
		// "default", which routes out.
		if n, declared := r.networks[name]; !declared || !n.Internal {
			spec.Egress = append(spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}},
				{IPBlock: &networkingv1.IPBlock{CIDR: "::/0"}},
			}})
		}
		policy(dnsLabel("network-", name), spec)
	}
}

func tcpPorts(ports []int) []networkingv1.NetworkPolicyPort {
	tcp := corev1.ProtocolTCP
	var out []networkingv1.NetworkPolicyPort
	for _, p := range ports {
		port := intstr.FromInt32(int32(p))
		out = append(out, networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &port})
	}
	return out
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
