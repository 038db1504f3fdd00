package kubernetes

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/aipairpro/orchestrator/internal/lazyre"
	"github.com/aipairpro/orchestrator/internal/model"
)

// isApp: the team's own app gets a PodDisruptionBudget and a
// HorizontalPodAutoscaler.
func isApp(s *model.Service) bool { return s.Component == "app" && !s.OneShot && !s.Stateful }

// envSecretName is the Secret holding a service's secret variables.
func envSecretName(s *model.Service) string { return s.Name + "-env" }

// configMapName is the ConfigMap of one of the deployment's files.
func configMapName(path string) string { return dnsLabel("", path) }

// fileKey is the key of a file in its ConfigMap.
func fileKey(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// service renders one service: its workload, its Service, and for the app
// its budget and autoscaler.
func (r *renderer) service(s *model.Service) error {
	plan := r.workloads[s.Name]
	file := fileOf(s.Component)
	tmpl, err := r.podTemplate(s, plan)
	if err != nil {
		return err
	}
	labels := r.labels(s)
	selector := &metav1.LabelSelector{MatchLabels: r.selector(s)}
	replicas := int32(max(s.Replicas, 1))
	switch plan.kind {
	case "Job":
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
		r.add(file, &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta(s.Name, labels),
			Spec:       batchv1.JobSpec{BackoffLimit: ptr(int32(4)), Template: tmpl},
		})
	case "StatefulSet":
		sts := &appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: meta(s.Name, labels),
			Spec: appsv1.StatefulSetSpec{
				Replicas:    &replicas,
				ServiceName: s.Name,
				Selector:    selector,
				Template:    tmpl,
				// Kept when the StatefulSet is deleted or scaled down: data
				// goes only when asked (down --volumes).
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
					WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				},
			},
		}
		for _, name := range sortedKeys(plan.claimTemplates) {
			sts.Spec.VolumeClaimTemplates = append(sts.Spec.VolumeClaimTemplates, r.claim(name, labels))
		}
		r.add(file, sts)
	default:
		dep := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: meta(s.Name, labels),
			Spec:       appsv1.DeploymentSpec{Selector: selector, Template: tmpl},
		}
		// The autoscaler owns the app's replica count: a count in the
		// manifest would reset it on every apply.
		if !isApp(s) {
			dep.Spec.Replicas = &replicas
		}
		if plan.standaloneClaims {
			// A ReadWriteOnce claim cannot be attached to the old and the
			// new pod at once on two nodes.
			dep.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}
		r.add(file, dep)
	}
	if plan.kind != "Job" && len(s.Ports) > 0 {
		svc := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta(s.Name, labels),
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: r.selector(s)},
		}
		for _, p := range s.Ports {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
				Name: portName(p), Port: int32(p), TargetPort: intstr.FromInt32(int32(p)), Protocol: corev1.ProtocolTCP,
			})
		}
		r.add(file, svc)
	}
	if isApp(s) {
		r.add(file, &policyv1.PodDisruptionBudget{
			TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
			ObjectMeta: meta(s.Name, labels),
			Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr(intstr.FromInt32(1)), Selector: selector},
		})
		maxReplicas := r.opts.AppMaxReplicas
		if maxReplicas == 0 {
			maxReplicas = max(2*replicas, 2)
		}
		maxReplicas = max(maxReplicas, replicas)
		r.add(file, &autoscalingv2.HorizontalPodAutoscaler{
			TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
			ObjectMeta: meta(s.Name, labels),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: s.Name},
				MinReplicas:    &replicas,
				MaxReplicas:    maxReplicas,
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))},
					},
				}},
			},
		})
	}
	return nil
}

func portName(p int) string { return "tcp-" + strconv.Itoa(p) }

// claim is a ReadWriteOnce claim for a named volume.
func (r *renderer) claim(name string, labels map[string]string) corev1.PersistentVolumeClaim {
	size := r.opts.DefaultVolumeSize
	if v, ok := r.volumes[name]; ok && v.SizeBytes > 0 {
		size = *resource.NewQuantity(v.SizeBytes, resource.BinarySI)
	}
	pvc := corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if r.opts.StorageClass != "" {
		pvc.Spec.StorageClassName = ptr(r.opts.StorageClass)
	}
	return pvc
}

// claims renders the named volumes that are not a StatefulSet's own: one
// claim each, in the file of the first service that mounts it.
func (r *renderer) claims() error {
	for _, name := range sortedKeys(r.volumeUsers) {
		users := r.volumeUsers[name]
		first := r.services[users[0]]
		if r.workloads[first.Name].claimTemplates[name] {
			continue
		}
		if errs := validateLabel(name); errs != "" {
			return fmt.Errorf("volume %q: %s", name, errs)
		}
		if len(users) > 1 {
			r.warn("volume %s is mounted by %s: its ReadWriteOnce claim lets their pods run only on one node together", name, strings.Join(users, ", "))
		}
		pvc := r.claim(name, r.labels(first))
		pvc.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"}
		r.add(fileOf(first.Component), &pvc)
	}
	return nil
}

// podTemplate is a service's pod: its container, the waits for its
// dependencies, volumes, probes and security context.
func (r *renderer) podTemplate(s *model.Service, plan *workloadPlan) (corev1.PodTemplateSpec, error) {
	p := plan.profile
	labels := r.labels(s)
	for _, n := range effectiveNetworks(s) {
		labels[LabelNetworkPrefix+n] = "true"
	}
	spec := corev1.PodSpec{
		// No pod talks to the Kubernetes API, and the variables service
		// links inject (POSTGRES_PORT=tcp://...) collide with the images'
		// own settings.
		AutomountServiceAccountToken: ptr(false),
		EnableServiceLinks:           ptr(false),
		SecurityContext:              podSecurity(s, p),
	}
	c := corev1.Container{
		Name:            s.Name,
		Image:           s.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         escapeAll(s.Entrypoint),
		Args:            escapeAll(s.Command),
		SecurityContext: containerSecurity(p),
		Resources:       r.resources(s),
	}
	for _, port := range s.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: portName(port), ContainerPort: int32(port), Protocol: corev1.ProtocolTCP})
	}
	var err error
	var needsPodIP bool
	c.ReadinessProbe, c.LivenessProbe, c.StartupProbe, needsPodIP, err = probes(s)
	if err != nil {
		return corev1.PodTemplateSpec{}, err
	}
	c.Env, err = r.env(s, p, needsPodIP)
	if err != nil {
		return corev1.PodTemplateSpec{}, err
	}
	vols := map[string]corev1.Volume{}
	for _, v := range s.Volumes {
		switch {
		case v.Volume != "":
			if !plan.claimTemplates[v.Volume] {
				vols[v.Volume] = corev1.Volume{Name: v.Volume, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.Volume},
				}}
			}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Volume, MountPath: v.Target, ReadOnly: v.ReadOnly})
		case v.Scratch:
			name := dnsLabel("scratch-", v.Target)
			vols[name] = corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: v.Target, ReadOnly: v.ReadOnly})
		default:
			name := dnsLabel("host-", v.Target)
			r.warn("%s: host path %s becomes an empty directory that lives as long as the pod: Pod Security baseline forbids host paths", s.Name, v.HostPath)
			vols[name] = corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: v.Target, ReadOnly: v.ReadOnly})
		}
	}
	for _, w := range writablePaths(s, p) {
		name := dnsLabel("rw-", w)
		vols[name] = corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: w})
	}
	for _, m := range s.FileMounts {
		f, ok := r.files[m.File]
		if !ok {
			return corev1.PodTemplateSpec{}, fmt.Errorf("mounts file %q, which the deployment does not have", m.File)
		}
		cm := configMapName(f.Path)
		name := dnsLabel("file-", cm)
		mode := int32(f.Mode)
		if mode == 0 {
			mode = 0o644
		}
		vols[name] = corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm}, DefaultMode: &mode,
		}}}
		// subPath: the file lands beside what the image has in that
		// directory instead of hiding it; the inputs digest rolls the pods
		// when it changes (a subPath mount does not follow updates).
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: m.Target, SubPath: fileKey(f.Path), ReadOnly: true})
	}
	for _, m := range s.SecretMounts {
		name := dnsLabel("secret-", m.Secret)
		// 0444 as compose mounts secrets (images that start as root and
		// switch user read them after the switch), unless the model says.
		mode := int32(0o444)
		if m.Mode != 0 {
			mode = int32(m.Mode)
		}
		if err := r.checkSecretOwner(s, p, m); err != nil {
			return corev1.PodTemplateSpec{}, err
		}
		vols[name] = corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: m.Secret, DefaultMode: &mode,
		}}}
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: m.Target, SubPath: m.Secret, ReadOnly: true})
	}
	if len(s.PassFiles) > 0 {
		// The applier's values, from the service's variables Secret, as
		// files at /run/secrets/<NAME> as in Phase 1.
		mode := int32(0o444)
		vols["pass-files"] = corev1.Volume{Name: "pass-files", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: envSecretName(s), DefaultMode: &mode,
		}}}
		for _, k := range s.PassFiles {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "pass-files", MountPath: "/run/secrets/" + k, SubPath: k, ReadOnly: true})
		}
	}
	sort.Slice(c.VolumeMounts, func(i, j int) bool { return c.VolumeMounts[i].MountPath < c.VolumeMounts[j].MountPath })
	spec.InitContainers = r.waits(s, c.SecurityContext)
	if len(spec.InitContainers) > 0 {
		vols[WaitConfigMap] = waitVolume()
	}
	for _, name := range sortedKeys(vols) {
		spec.Volumes = append(spec.Volumes, vols[name])
	}
	spec.Containers = []corev1.Container{c}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
	digest, err := r.inputsDigest(s)
	if err != nil {
		return corev1.PodTemplateSpec{}, err
	}
	if digest != "" {
		tmpl.Annotations = map[string]string{AnnotationInputs: digest}
	}
	return tmpl, nil
}

// checkSecretOwner: Kubernetes mounts a Secret's files owned by root, in
// the pod's fsGroup, which also gets read access. A secret the model wants
// owned by a user is therefore readable by it only when that user is the
// pod's (non-root) user or group; otherwise the render says so.
func (r *renderer) checkSecretOwner(s *model.Service, p ImageProfile, m model.SecretMount) error {
	if m.UID == "" || m.UID == "0" {
		return nil
	}
	uid, err := strconv.ParseInt(m.UID, 10, 64)
	if err != nil {
		return fmt.Errorf("secret %s: owner %q is not a numeric uid", m.Secret, m.UID)
	}
	if p.Root || (uid != p.UID && uid != p.GID) {
		r.warn("%s: secret %s should belong to uid %d, but Kubernetes mounts it owned by root (mode %#o), which that user may not read", s.Name, m.Secret, uid, m.Mode)
	}
	return nil
}

// effectiveNetworks are the networks a service joins; compose puts a
// service that names none on the project's "default" network.
func effectiveNetworks(s *model.Service) []string {
	if s.Isolated {
		return nil
	}
	if len(s.Networks) == 0 {
		return []string{"default"}
	}
	return s.Networks
}

// env is the container's environment, sorted by name: plain values,
// secret variables from the service's Secret, and what the profile adds.
func (r *renderer) env(s *model.Service, p ImageProfile, podIP bool) ([]corev1.EnvVar, error) {
	vars := map[string]corev1.EnvVar{}
	set := func(v corev1.EnvVar) error {
		if _, dup := vars[v.Name]; dup {
			return fmt.Errorf("variable %s is set twice", v.Name)
		}
		vars[v.Name] = v
		return nil
	}
	for k, v := range s.Env {
		if err := set(corev1.EnvVar{Name: k, Value: escape(v)}); err != nil {
			return nil, err
		}
	}
	secretKeys := append(sortedKeys(s.SecretEnv), s.PassEnv...)
	for _, k := range secretKeys {
		ref := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: envSecretName(s)}, Key: k,
		}}
		if err := set(corev1.EnvVar{Name: k, ValueFrom: ref}); err != nil {
			return nil, err
		}
	}
	if podIP {
		if err := set(corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}); err != nil {
			return nil, err
		}
	}
	if p.DataEnv != "" && !p.Root {
		if _, set := vars[p.DataEnv]; !set {
			for _, v := range s.Volumes {
				if v.Volume != "" && v.Target == p.DataMount {
					vars[p.DataEnv] = corev1.EnvVar{Name: p.DataEnv, Value: p.DataMount + "/" + p.DataSubdir}
				}
			}
		}
	}
	out := make([]corev1.EnvVar, 0, len(vars))
	for _, k := range sortedKeys(vars) {
		out = append(out, vars[k])
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// resources: memory is requested at its limit (no overcommit, so no
// surprise OOM kill when the node fills up); CPU is requested at
// Options.CPURequest, or the limit when that is lower.
func (r *renderer) resources(s *model.Service) corev1.ResourceRequirements {
	req := corev1.ResourceList{corev1.ResourceCPU: r.opts.CPURequest}
	lim := corev1.ResourceList{}
	if s.MemoryBytes > 0 {
		q := *resource.NewQuantity(s.MemoryBytes, resource.BinarySI)
		req[corev1.ResourceMemory] = q
		lim[corev1.ResourceMemory] = q
	}
	if s.CPUs > 0 {
		q := *resource.NewMilliQuantity(int64(math.Round(s.CPUs*1000)), resource.DecimalSI)
		lim[corev1.ResourceCPU] = q
		if q.Cmp(r.opts.CPURequest) < 0 {
			req[corev1.ResourceCPU] = q
		}
	}
	rr := corev1.ResourceRequirements{Requests: req}
	if len(lim) > 0 {
		rr.Limits = lim
	}
	return rr
}

// podSecurity: RuntimeDefault seccomp for every pod; a non-root user, its
// group and fsGroup (so volumes are writable) where the image allows it,
// and the one sysctl a non-root server needs to listen below port 1024.
func podSecurity(s *model.Service, p ImageProfile) *corev1.PodSecurityContext {
	sc := &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	if p.Root {
		return sc
	}
	sc.RunAsNonRoot = ptr(true)
	sc.RunAsUser = ptr(p.UID)
	sc.RunAsGroup = ptr(p.GID)
	sc.FSGroup = ptr(p.GID)
	sc.FSGroupChangePolicy = ptr(corev1.FSGroupChangeOnRootMismatch)
	low := 0
	for _, port := range s.Ports {
		if port < 1024 && (low == 0 || port < low) {
			low = port
		}
	}
	if low > 0 {
		// A namespaced, "safe" sysctl that both Pod Security levels allow;
		// capabilities do not reach a non-root process.
		sc.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: strconv.Itoa(low)}}
	}
	return sc
}

// rootCapabilities are what images that start as root use to set up and
// drop to their own user (chown, setuid, low ports): Docker's defaults
// without the ones they do not need (AUDIT_WRITE, MKNOD, NET_RAW, SETFCAP,
// SETPCAP, SYS_CHROOT). All are allowed by Pod Security baseline.
var rootCapabilities = []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID"}

func containerSecurity(p ImageProfile) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if p.Root {
		sc.Capabilities.Add = rootCapabilities
		return sc
	}
	sc.ReadOnlyRootFilesystem = ptr(p.ReadOnlyRoot)
	return sc
}

// Probe defaults are compose's.
const (
	defaultIntervalSec = 30
	defaultTimeoutSec  = 30
	defaultRetries     = 3
)

// probes turns a healthcheck into a readiness probe, and, where it is safe,
// a liveness probe with a startup probe that covers the start period.
// Liveness is safe for a stateless long-running service whose check talks
// only to the container itself: it never restarts a data service (a
// restart during recovery costs more than it helps), a job, or a service
// because something else is down. needsPodIP: the check reaches the
// service by its own name, rewritten to the pod's address (see selfRef).
func probes(s *model.Service) (readiness, liveness, startup *corev1.Probe, needsPodIP bool, err error) {
	h := s.Health
	if h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil, nil, nil, false, nil
	}
	var cmd []string
	var text string
	switch h.Test[0] {
	case "CMD":
		if len(h.Test) < 2 {
			return nil, nil, nil, false, fmt.Errorf("healthcheck CMD without a command")
		}
		cmd = h.Test[1:]
		text = strings.Join(cmd, " ")
		if selfRef(s.Name).MatchString(text) {
			quoted := make([]string, len(cmd))
			for i, a := range cmd {
				if plainWord(a) {
					quoted[i] = replaceSelf(s.Name, a, `"$${POD_IP}"`)
				} else {
					// Inside single quotes: close them around the variable.
					quoted[i] = replaceSelf(s.Name, shellQuote(a), `'"$${POD_IP}"'`)
				}
			}
			cmd = []string{"sh", "-c", strings.Join(quoted, " ")}
			needsPodIP = true
		}
	case "CMD-SHELL":
		text = strings.Join(h.Test[1:], " ")
		if selfRef(s.Name).MatchString(text) {
			cmd = []string{"sh", "-c", replaceSelf(s.Name, text, `$${POD_IP}`)}
			needsPodIP = true
		} else {
			cmd = []string{"sh", "-c", text}
		}
	default:
		return nil, nil, nil, false, fmt.Errorf("healthcheck test %q: expected CMD, CMD-SHELL or NONE first", h.Test[0])
	}
	interval, timeout, retries := orDefault(h.IntervalSec, defaultIntervalSec), orDefault(h.TimeoutSec, defaultTimeoutSec), orDefault(h.Retries, defaultRetries)
	probe := func(failures int) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
			PeriodSeconds:    int32(interval),
			TimeoutSeconds:   int32(timeout),
			FailureThreshold: int32(failures),
			SuccessThreshold: 1,
		}
	}
	readiness = probe(retries)
	if s.Stateful || s.OneShot || needsPodIP || !loopbackOnly(text) {
		return readiness, nil, nil, needsPodIP, nil
	}
	// Out of the Service after `retries` failures, restarted only after
	// twice as many.
	liveness = probe(2 * retries)
	if h.StartSec > 0 {
		startup = probe(int(math.Ceil(float64(h.StartSec)/float64(interval))) + retries)
	}
	return readiness, liveness, startup, false, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

var (
	loopbackRef = lazyre.New(`(^|[^A-Za-z0-9.-])(127\.0\.0\.1|localhost|\[::1\])([^A-Za-z0-9.-]|$)`)
	// hostRef finds host names in URLs and host:port pairs.
	hostRef = lazyre.New(`(?:://|^|[\s'"=])([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9a-fA-F:]+\]):[0-9]+`)
)

// loopbackOnly: the check names a loopback address and no other host.
func loopbackOnly(text string) bool {
	if !loopbackRef().MatchString(text) {
		return false
	}
	for _, m := range hostRef().FindAllStringSubmatch(text, -1) {
		switch m[1] {
		case "127.0.0.1", "localhost", "[::1]":
		default:
			return false
		}
	}
	return true
}

// selfRef matches the service's own name used as a host (name:port). In
// compose that name is the container; in Kubernetes it is the Service,
// which sends traffic only to ready pods, so a readiness check through it
// could never pass (Temporal's `--address temporal:7233`). Such checks
// are run against the pod's own address instead.
func selfRef(name string) *regexp.Regexp {
	return regexp.MustCompile(`(^|[^A-Za-z0-9.-])` + regexp.QuoteMeta(name) + `(:[0-9]+)`)
}

// replaceSelf puts ip (a regexp replacement naming $POD_IP) where the
// service's own name is used as a host.
func replaceSelf(name, text, ip string) string {
	return selfRef(name).ReplaceAllString(text, "${1}"+ip+"${2}")
}

// plainWord: sh reads s as itself, unquoted.
func plainWord(s string) bool {
	return s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=@,+%", c))
	}) < 0
}

// shellQuote quotes one argument for sh -c in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// escape protects '$' from Kubernetes' $(VAR) expansion in command, args
// and env values: "$$" reads back as "$".
func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = escape(s)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
