"""Pictures of results: contact sheets, checkerboard composites, matte display."""
from mattecli.report.sheet import (alpha_display, checkerboard, checkerboard_composite, contact_sheet,
                                   write_contact_sheet)

__all__ = ["alpha_display", "checkerboard", "checkerboard_composite", "contact_sheet", "write_contact_sheet"]
