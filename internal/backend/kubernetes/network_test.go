package kubernetes_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
)

func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err)
	return s.Matches(labels.Set(lbls))
}

// peerIsPod: the peer is a pod of this namespace matching lbls.
func peerIsPod(t *testing.T, peers []networkingv1.NetworkPolicyPeer, lbls map[string]string) bool {
	for _, p := range peers {
		if p.NamespaceSelector == nil && p.IPBlock == nil && p.PodSelector != nil && selects(t, p.PodSelector, lbls) {
			return true
		}
	}
	return false
}

func hasType(np *networkingv1.NetworkPolicy, pt networkingv1.PolicyType) bool {
	for _, x := range np.Spec.PolicyTypes {
		if x == pt {
			return true
		}
	}
	return false
}

// TestNetworkPoliciesAllowExactlyTheModelsEdges evaluates the rendered
// policies the way a policy-aware CNI does (a connection passes when a
// policy selecting the source allows it out and one selecting the
// destination allows it in; every pod is selected by default-deny) and
// requires pod-to-pod reachability to equal "shares a network of the
// model", what compose allows. Pods on a network that routes out may reach
// the internet; pods only on internal networks may not; every pod may ask
// the cluster DNS; the ingress controller reaches the routed ports only.
func TestNetworkPoliciesAllowExactlyTheModelsEdges(t *testing.T) {
	for _, f := range examples(t) {
		r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{})
		t.Run(r.name, func(t *testing.T) {
			pods := podTemplates(t, r.arts.Objects)
			var policies []*networkingv1.NetworkPolicy
			for _, o := range r.arts.Objects {
				if np, ok := o.(*networkingv1.NetworkPolicy); ok {
					policies = append(policies, np)
				}
			}
			nets := map[string]map[string]bool{}
			internal := map[string]bool{}
			for _, n := range r.dep.Networks {
				internal[n.Name] = n.Internal
			}
			routesOut := map[string]bool{}
			for _, s := range r.dep.Services {
				nets[s.Name] = map[string]bool{}
				for _, n := range s.Networks {
					nets[s.Name][n] = true
					if !internal[n] {
						routesOut[s.Name] = true
					}
				}
			}
			var names []string
			for name, pod := range pods {
				names = append(names, name)
				deny := false
				for _, np := range policies {
					if np.Name == "default-deny" && selects(t, &np.Spec.PodSelector, pod.Labels) && hasType(np, networkingv1.PolicyTypeIngress) && hasType(np, networkingv1.PolicyTypeEgress) {
						deny = true
					}
				}
				assert.True(t, deny, "%s is not under default-deny", name)
			}
			sort.Strings(names)
			var got, want []string
			for _, a := range names {
				for _, b := range names {
					if a == b {
						continue
					}
					out, in := false, false
					for _, np := range policies {
						if hasType(np, networkingv1.PolicyTypeEgress) && selects(t, &np.Spec.PodSelector, pods[a].Labels) {
							for _, e := range np.Spec.Egress {
								out = out || peerIsPod(t, e.To, pods[b].Labels)
							}
						}
						if hasType(np, networkingv1.PolicyTypeIngress) && selects(t, &np.Spec.PodSelector, pods[b].Labels) {
							for _, i := range np.Spec.Ingress {
								in = in || peerIsPod(t, i.From, pods[a].Labels)
							}
						}
					}
					if out && in {
						got = append(got, a+" -> "+b)
					}
					for n := range nets[a] {
						if nets[b][n] {
							want = append(want, a+" -> "+b)
							break
						}
					}
				}
			}
			assert.Equal(t, want, got)
			require.NotEmpty(t, got)

			for _, name := range names {
				internet, dns := false, false
				for _, np := range policies {
					if !hasType(np, networkingv1.PolicyTypeEgress) || !selects(t, &np.Spec.PodSelector, pods[name].Labels) {
						continue
					}
					for _, e := range np.Spec.Egress {
						for _, p := range e.To {
							if p.IPBlock != nil && p.IPBlock.CIDR == "0.0.0.0/0" && len(p.IPBlock.Except) == 0 && len(e.Ports) == 0 {
								internet = true
							}
							if p.NamespaceSelector != nil && p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "kube-system" {
								dns = len(e.Ports) == 2 && e.Ports[0].Port.IntValue() == 53
							}
						}
					}
				}
				assert.Equal(t, routesOut[name], internet, "%s: reaches the internet", name)
				assert.True(t, dns, "%s: asks the cluster DNS", name)
			}

			routed := map[string][]int{}
			for _, rt := range r.dep.Routes {
				if _, ok := pods[rt.Service]; ok {
					routed[rt.Service] = append(routed[rt.Service], rt.Port)
				}
			}
			for _, name := range names {
				var ports []int
				for _, np := range policies {
					if !hasType(np, networkingv1.PolicyTypeIngress) || !selects(t, &np.Spec.PodSelector, pods[name].Labels) {
						continue
					}
					for _, i := range np.Spec.Ingress {
						for _, p := range i.From {
							if p.NamespaceSelector != nil {
								assert.Equal(t, map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"}, p.NamespaceSelector.MatchLabels)
								for _, port := range i.Ports {
									ports = append(ports, port.Port.IntValue())
								}
							}
						}
					}
				}
				assert.Equal(t, fmt.Sprint(routed[name]), fmt.Sprint(ports), "%s: ports the ingress controller reaches", name)
			}
		})
	}
}
