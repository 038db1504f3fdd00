package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/model"
)

// secrets builds the Secrets the rendered pods reference: one per mounted
// secret of the model (named like it, one key of the same name) and one
// per service with secret variables (<service>-env, a key per variable).
// Their values exist only with Options.Secrets; the files name them either
// way.
func (r *renderer) secrets() error {
	owners := map[string]string{} // Secret name -> what it is, for collisions
	claim := func(name, what string) error {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return fmt.Errorf("%s: Secret name %q: %s", what, name, strings.Join(errs, "; "))
		}
		if prev, dup := owners[name]; dup && prev != what {
			return fmt.Errorf("%s and %s would both be the Secret %q", prev, what, name)
		}
		owners[name] = what
		return nil
	}
	for _, s := range r.order {
		for _, m := range s.SecretMounts {
			if err := claim(m.Secret, "secret "+m.Secret); err != nil {
				return err
			}
			if errs := validation.IsConfigMapKey(m.Secret); len(errs) > 0 {
				return fmt.Errorf("secret %q cannot be a Secret key: %s", m.Secret, strings.Join(errs, "; "))
			}
			if r.opts.Secrets == nil || r.secretObjs[m.Secret] != nil {
				continue
			}
			v, err := r.opts.Secrets.Value(m.Secret)
			if err != nil {
				return err
			}
			r.secretObjs[m.Secret] = r.secretObject(m.Secret, r.stackLabels(), map[string][]byte{m.Secret: []byte(v)})
		}
		if len(s.SecretEnv) == 0 && len(s.PassEnv) == 0 && len(s.PassFiles) == 0 {
			continue
		}
		name := envSecretName(s)
		if err := claim(name, "the variables of "+s.Name); err != nil {
			return err
		}
		if r.opts.Secrets == nil {
			continue
		}
		data := map[string][]byte{}
		for k, tmpl := range s.SecretEnv {
			v, err := r.opts.Secrets.Expand(tmpl)
			if err != nil {
				return fmt.Errorf("service %s, variable %s: %w", s.Name, k, err)
			}
			data[k] = []byte(v)
		}
		// Pass-through values, as variables (PassEnv) or as files
		// (PassFiles, mounted from the same Secret at /run/secrets/<NAME>).
		for _, k := range append(append([]string(nil), s.PassEnv...), s.PassFiles...) {
			var v string
			var ok bool
			if r.opts.LookupEnv != nil {
				v, ok = r.opts.LookupEnv(k)
			}
			if !ok {
				if r.opts.IncludeSecrets {
					return fmt.Errorf("service %s: %s is not set: its value comes from the environment of whoever renders with secrets included; set it and render again", s.Name, k)
				}
				r.arts.MissingEnv = append(r.arts.MissingEnv, k)
				continue
			}
			data[k] = []byte(v)
		}
		r.secretObjs[name] = r.secretObject(name, r.labels(s), data)
	}
	sort.Strings(r.arts.MissingEnv)
	r.arts.MissingEnv = dedupe(r.arts.MissingEnv)
	for _, name := range sortedKeys(r.secretObjs) {
		sec := r.secretObjs[name]
		sec.Namespace = r.ns
		r.arts.Secrets = append(r.arts.Secrets, sec)
		if r.opts.IncludeSecrets {
			r.add(SecretsFile, sec)
		}
	}
	return nil
}

func (r *renderer) secretObject(name string, labels map[string]string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(name, labels),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// configMaps renders each file a rendered service mounts as a ConfigMap
// with one key (the file's base name), in the file of the first service
// that mounts it.
func (r *renderer) configMaps() error {
	owner := map[string]*model.Service{}
	for _, s := range r.order {
		for _, m := range s.FileMounts {
			if _, ok := owner[m.File]; !ok {
				owner[m.File] = s
			}
		}
	}
	names := map[string]string{WaitConfigMap: "the dependency wait script"}
	for _, path := range sortedKeys(owner) {
		f, ok := r.files[path]
		if !ok {
			return fmt.Errorf("service %s mounts file %q, which the deployment does not have", owner[path].Name, path)
		}
		name := configMapName(path)
		if prev, dup := names[name]; dup {
			return fmt.Errorf("files %s and %s would both be the ConfigMap %q", prev, path, name)
		}
		names[name] = path
		key := fileKey(path)
		if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
			return fmt.Errorf("file %s: ConfigMap key %q: %s", path, key, strings.Join(errs, "; "))
		}
		cm := &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(name, r.labels(owner[path])),
		}
		if utf8.Valid(f.Content) {
			cm.Data = map[string]string{key: string(f.Content)}
		} else {
			cm.BinaryData = map[string][]byte{key: f.Content}
		}
		r.add(fileOf(owner[path].Component), cm)
	}
	return nil
}

// inputsDigest hashes, in a fixed order, every content a service's pods
// read from Secrets and ConfigMaps. It reveals nothing of the values: a
// SHA-256 over high-entropy secrets. Empty without the secret state.
func (r *renderer) inputsDigest(s *model.Service) (string, error) {
	if r.opts.Secrets == nil {
		return "", nil
	}
	var parts []string
	for _, m := range s.SecretMounts {
		v, err := r.opts.Secrets.Value(m.Secret)
		if err != nil {
			return "", err
		}
		parts = append(parts, "secret "+m.Secret+"\x00"+v)
	}
	for _, m := range s.FileMounts {
		parts = append(parts, "file "+m.File+"\x00"+string(r.files[m.File].Content))
	}
	for _, k := range sortedKeys(s.SecretEnv) {
		v, err := r.opts.Secrets.Expand(s.SecretEnv[k])
		if err != nil {
			return "", err
		}
		parts = append(parts, "env "+k+"\x00"+v)
	}
	return engine.InputsDigest(parts), nil
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func validateLabel(s string) string {
	return strings.Join(validation.IsDNS1123Label(s), "; ")
}

func dedupe(in []string) []string {
	var out []string
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}
