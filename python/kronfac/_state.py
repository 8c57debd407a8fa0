"""The C++ core's state as it travels in a state_dict, and what may not travel at all.

The core saves itself as bytes (its own archive). A state_dict carries them with their CRC-32, checked on load: a
flipped bit would otherwise load silently, or as garbage. The objects whose state lives in the core refuse pickling,
copying and torch.save of the object itself, which would drop the core: their state_dict() is the way."""
import zlib

FORMAT = "kfac-state-1"


def pack(blob, owner):
    """A state_dict's 'kfac' entry: the core's bytes, their CRC-32, and the class that saved them."""
    return {"format": FORMAT, "bytes": blob, "crc32": zlib.crc32(blob), "owner": owner}


def unpack(entry, owner):
    """The core's bytes from a state_dict's 'kfac' entry, checked; bare bytes are a state saved before the CRC."""
    if isinstance(entry, (bytes, bytearray)):
        return bytes(entry)
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or "bytes" not in entry or "crc32" not in entry:
        raise ValueError(f"kronfac.{owner}.load_state_dict: its 'kfac' entry is not a kronfac state (got "
                         f"{type(entry).__name__}); pass what {owner}.state_dict() returned")
    if entry.get("owner", owner) != owner:  # states saved before the owner was recorded have none
        raise ValueError(f"kronfac.{owner}.load_state_dict: this is the state of a kronfac.{entry['owner']}, not of a "
                         f"{owner}; load it into a kronfac.{entry['owner']}")
    blob = entry["bytes"]
    crc = zlib.crc32(blob)
    if crc != entry["crc32"]:
        raise ValueError(f"kronfac.{owner}.load_state_dict: the state is damaged (its CRC-32 is {crc:08x}, it was saved as "
                         f"{entry['crc32']:08x}); load an intact copy")
    return blob


class CoreOwned:
    """Refuses pickle, copy.copy, copy.deepcopy and torch.save of the object itself, naming the way that works."""

    def __reduce_ex__(self, protocol):
        name = type(self).__name__
        raise TypeError(f"kronfac.{name} cannot be pickled, copied or torch.save'd as an object: its state lives in the "
                        f"C++ core, which would be lost. Save {name}.state_dict() and restore it with "
                        f"load_state_dict() on a new kronfac.{name}")


class CoreOptimizerState:
    """state_dict() / load_state_dict() of a torch.optim.Optimizer whose state lives in a C++ core (self._core with
    save() and load()): torch's own entries (the parameter groups) plus the core's bytes under 'kfac', checked
    before anything changes."""

    def state_dict(self):
        """torch.optim's state (the parameter groups) and the core's whole state, with its CRC-32."""
        state = super().state_dict()
        state["kfac"] = pack(self._core.save(), type(self).__name__)
        return state

    def load_state_dict(self, state_dict):
        """Loads a state_dict() of the same optimizer on the same model, its CRC-32 checked before anything changes."""
        state_dict = dict(state_dict)
        name = type(self).__name__
        blob = state_dict.pop("kfac", None)
        if blob is None:
            raise ValueError(f"kronfac.{name}.load_state_dict: not a {name} state (no 'kfac' entry)")
        blob = unpack(blob, name)
        super().load_state_dict(state_dict)
        self._core.load(blob)
