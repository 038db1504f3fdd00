// Command mkimage writes a single-layer container image in `docker save`
// format (manifest.json, the config and one layer.tar) from a directory, so
// the cluster's own images (pause, CoreDNS, local-path) need neither a
// registry nor a Docker engine: `ctr images import` reads the result.
//
//	mkimage -ref NAME:TAG -o OUT.tar [-entrypoint /bin/x] [-arg A]... [-env K=V]... ROOTFS
//
// Every file belongs to root and has mtime 0, and entries are sorted, so the
// same ROOTFS always gives the same image ID.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		ref, out, workdir string
		entrypoint        list
		args, env         list
	)
	flag.StringVar(&ref, "ref", "", "image reference NAME:TAG stored in the tarball")
	flag.StringVar(&out, "o", "", "output tarball")
	flag.StringVar(&workdir, "workdir", "/", "working directory")
	flag.Var(&entrypoint, "entrypoint", "entrypoint word (repeatable)")
	flag.Var(&args, "arg", "default argument (repeatable)")
	flag.Var(&env, "env", "K=V environment entry (repeatable; PATH=/bin:/usr/bin:/sbin if none)")
	flag.Parse()
	if ref == "" || out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkimage -ref NAME:TAG -o OUT.tar [-entrypoint W]... [-arg A]... [-env K=V]... ROOTFS")
		os.Exit(2)
	}
	if len(env) == 0 {
		env = list{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}
	}
	if err := run(flag.Arg(0), ref, out, workdir, entrypoint, args, env); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(root, ref, out, workdir string, entrypoint, args, env []string) error {
	layer, err := layerTar(root)
	if err != nil {
		return err
	}
	diff := sha256.Sum256(layer)
	diffHex := hex.EncodeToString(diff[:])
	type imageConfig struct {
		Entrypoint []string `json:"Entrypoint,omitempty"`
		Cmd        []string `json:"Cmd,omitempty"`
		Env        []string `json:"Env"`
		WorkingDir string   `json:"WorkingDir"`
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config":       imageConfig{Entrypoint: entrypoint, Cmd: args, Env: env, WorkingDir: workdir},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + diffHex}},
	})
	if err != nil {
		return err
	}
	cfgSum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   cfgName,
		"RepoTags": []string{ref},
		"Layers":   []string{diffHex + "/layer.tar"},
	}})
	if err != nil {
		return err
	}

	// Written beside the target and renamed, so an interrupted run never
	// leaves a truncated tarball that a later run would take as built.
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{
		{diffHex + "/layer.tar", layer},
		{cfgName, cfg},
		{"manifest.json", manifest},
	} {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// layerTar returns ROOT as an uncompressed tar, entries in lexical order.
func layerTar(root string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			defer src.Close()
			if _, err := io.Copy(tw, src); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
