#!/usr/bin/env python3
"""NoiseBrush for GIMP 3: Filters > NoiseBrush > SDEdit... / LEDITS....

Sends the selected layers and the selection to a NoiseBrush server and inserts each result as a new
layer above its source, in one undo group. Uses GIMP's Python, GObject introspection and the stdlib.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
import gimp_host  # noqa: E402
import gimp_logic  # noqa: E402
from gi.repository import Gimp, GLib, GObject  # noqa: E402
from nb_client import DEFAULT_URL, Client, ServerError, read_token  # noqa: E402
from nb_edit import Settings  # noqa: E402

PROCEDURES = {"noisebrush-sdedit": ("sdedit", "_SDEdit..."), "noisebrush-ledits": ("ledits", "_LEDITS...")}
RW = GObject.ParamFlags.READWRITE


class NoiseBrush(Gimp.PlugIn):
    def do_query_procedures(self) -> list[str]:
        return list(PROCEDURES)

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        kind, label = PROCEDURES[name]
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_image_types("RGB*")
        proc.set_sensitivity_mask(
            Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
        )
        proc.set_menu_label(label)
        proc.add_menu_path("<Image>/Filters/NoiseBrush")
        proc.set_documentation(
            f"NoiseBrush {label.strip('_.')}: guided synthesis with a diffusion prior",
            "Sends the selected layers and the selection to a NoiseBrush server (noisebrush serve) and adds "
            "each result as a new layer above its source.",
            name,
        )
        proc.set_attribution("NoiseBrush", "NoiseBrush", "2026")
        proc.add_string_argument("server-url", "Server", "NoiseBrush server URL", DEFAULT_URL, RW)
        proc.add_string_argument("token", "Token", "server token (empty: read the local token file)", "", RW)
        proc.add_string_argument("model", "Model", "prior name", "default", RW)
        proc.add_int_argument(
            "steps", "Steps", "steps of the schedule (0: the prior's default)", 0, 1000, 0, RW
        )
        proc.add_int_argument("seed", "Seed", "random seed", 0, 2**31 - 1, 0, RW)
        proc.add_string_argument("prompt", "Prompt", "text prompt (LEDITS: target prompt)", "", RW)
        if kind == "sdedit":
            proc.add_double_argument(
                "strength", "Strength", "SDEdit t0: 0 keeps the guide, 1 ignores it", 0.0, 1.0, 0.5, RW
            )
            proc.add_int_argument("variations", "Variations", "results per layer", 1, 16, 1, RW)
            proc.add_string_argument("negative-prompt", "Negative prompt", "what to avoid", "", RW)
        else:
            proc.add_string_argument(
                "concepts", "Concepts", "SEGA concepts: 'cat, -hat' adds cat, removes hat", "", RW
            )
            proc.add_double_argument(
                "skip", "Skip", "fraction of the noisiest steps not regenerated", 0.0, 0.99, 0.15, RW
            )
        return proc

    def run(self, procedure, run_mode, image, drawables, config, data):  # type: ignore[no-untyped-def]
        kind, label = PROCEDURES[procedure.get_name()]
        if run_mode == Gimp.RunMode.INTERACTIVE:
            gi.require_version("GimpUi", "3.0")
            from gi.repository import GimpUi

            GimpUi.init(procedure.get_name())
            dialog = GimpUi.ProcedureDialog.new(procedure, config, f"NoiseBrush {label.strip('_.')}")
            dialog.fill(None)
            ok = dialog.run()
            dialog.destroy()
            if not ok:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:
            settings = settings_from(config, kind)
            token = config.get_property("token") or read_token()
            client = Client(config.get_property("server-url") or DEFAULT_URL, token)
            Gimp.progress_init(f"NoiseBrush {label.strip('_.')}")
            gimp_logic.run(gimp_host.GimpHost(), image, list(drawables), settings, client)
        except (ServerError, ValueError) as exc:
            return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(str(exc)))
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def settings_from(config, kind: str) -> Settings:  # type: ignore[no-untyped-def]
    get = config.get_property
    s = Settings(
        kind=kind,
        model=get("model") or "default",
        steps=get("steps"),
        seed=get("seed"),
        prompt=get("prompt"),
        previews=False,
    )
    if kind == "sdedit":
        s.strength, s.variations, s.negative_prompt = (
            get("strength"),
            get("variations"),
            get("negative-prompt"),
        )
    else:
        s.concepts, s.skip = get("concepts"), get("skip")
    return s


if __name__ == "__main__":
    Gimp.main(NoiseBrush.__gtype__, sys.argv)
