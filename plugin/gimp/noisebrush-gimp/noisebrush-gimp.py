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
import gimp_guard  # noqa: E402
import gimp_host  # noqa: E402
import gimp_logic  # noqa: E402
from gi.repository import Gimp, GLib, GObject  # noqa: E402
from nb_client import DEFAULT_URL, Client, ServerError, read_token  # noqa: E402
from nb_jobs import Cancelled  # noqa: E402

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
        for arg in gimp_logic.args_for(kind):
            add_argument(proc, arg)
        return proc

    def run(self, procedure, run_mode, image, drawables, config, data):  # type: ignore[no-untyped-def]
        kind, label = PROCEDURES[procedure.get_name()]
        if run_mode == Gimp.RunMode.INTERACTIVE:
            gi.require_version("GimpUi", "3.0")
            from gi.repository import GimpUi

            GimpUi.init(procedure.get_name())
            dialog = GimpUi.ProcedureDialog.new(procedure, config, f"NoiseBrush {label.strip('_.')}")
            fill_dialog(dialog, kind)
            ok = dialog.run()
            dialog.destroy()
            if not ok:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:
            values = gimp_logic.read_args(config.get_property, kind)
            settings = gimp_logic.settings_from(values, kind)
            client = Client(values["server-url"] or DEFAULT_URL, values["token"] or read_token())
            Gimp.progress_init(f"NoiseBrush {label.strip('_.')}")
            # Cancel in GIMP's progress kills this process; the guard then cancels the server's jobs.
            guard = gimp_guard.CancelGuard(client)
            try:
                gimp_logic.run(gimp_host.GimpHost(), image, list(drawables), settings, client, guard)
            finally:
                guard.close()
        except Cancelled:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        except (ServerError, ValueError) as exc:
            return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(str(exc)))
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def fill_dialog(dialog, kind: str) -> None:  # type: ignore[no-untyped-def]
    """One frame per group of arguments (gimp_logic.GROUPS): the server, the texts side by side, the rest."""
    frames = []
    for group, title in gimp_logic.GROUPS.items():
        names = [a.name for a in gimp_logic.args_for(kind) if a.group == group]
        dialog.fill_box(f"{group}-box", names)
        dialog.get_label(f"{group}-title", title, False, False)
        dialog.fill_frame(f"{group}-frame", f"{group}-title", False, f"{group}-box")
        frames.append(f"{group}-frame")
    dialog.fill(frames)


def add_argument(proc: Gimp.Procedure, arg: gimp_logic.Arg) -> None:
    if isinstance(arg.default, str):
        proc.add_string_argument(arg.name, arg.label, arg.blurb, arg.default, RW)
    elif isinstance(arg.default, bool):
        proc.add_boolean_argument(arg.name, arg.label, arg.blurb, arg.default, RW)
    elif isinstance(arg.default, int):
        proc.add_int_argument(arg.name, arg.label, arg.blurb, int(arg.low), int(arg.high), arg.default, RW)
    else:
        proc.add_double_argument(arg.name, arg.label, arg.blurb, arg.low, arg.high, arg.default, RW)


if __name__ == "__main__":
    Gimp.main(NoiseBrush.__gtype__, sys.argv)
