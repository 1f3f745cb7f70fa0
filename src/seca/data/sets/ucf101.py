"""UCF-101: 101 human actions in 13,320 YouTube videos (Soomro, Zamir and Shah, 2012), as one middle frame per video
(the image benchmark of CoOp and C3Box), read with the official train/test split, or from C3Box's train/ val/ folders.

The frames are CoOp's ``UCF-101-midframes/<class>/<video>.jpg`` (``Apply_Eye_Makeup/v_ApplyEyeMakeup_g08_c01.jpg``:
the video's name with ``.jpg`` for ``.avi``); the split is the official ``UCF101TrainTestSplits-RecognitionTask.zip``,
extracted beside it as ``ucfTrainTestlist/``: ``classInd.txt`` (``1 ApplyEyeMakeup``: the class ids),
``trainlist0N.txt`` (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``) and ``testlist0N.txt`` (no label), N = 1..3;
``data.ucf101.split`` picks N (1, 9,537 / 3,783 videos, by default, as CoOp and C3Box). A class folder may be spelled
as classInd.txt has it (``ApplyEyeMakeup``) or split into words (CoOp's ``Apply_Eye_Makeup``): case, underscores and
spaces aside they are one. A class's name splits classInd.txt's CamelCase into words, a space before each capital that
follows a lower-case letter or digit (``ApplyEyeMakeup`` -> "Apply Eye Makeup", ``YoYo`` -> "Yo Yo"), as CoOp does.

C3Box's ``ucf101`` is 100 of these classes (all but ``YoYo``) as ``train/<class>/`` and ``val/<class>/`` folders, which
torchvision's ImageFolder numbers in sorted folder order: not classInd.txt's, which sorts without regard to case
(``Hammering`` before ``HammerThrow``, ``JumpingJack`` before ``JumpRope``). seca numbers C3Box's folders as C3Box does,
so its class ids, its labels.json and the ``lamda`` order line up, and says so in one line. C3Box's names follow the
same CamelCase rule applied to the spelling the video files carry, which differs from classInd.txt's for one class:
``v_HandStandPushups_*`` ("Hand Stand Pushups", not "Handstand Pushups").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig, between, section, setting
from ...errors import SecaError
from ..images import shown
from ._lists import c3box_matched, listed_in_folders, lists_split, spelling_key, text_lines
from .base import BenchmarkData, DataSet, register

FRAMES = "UCF-101-midframes"
LISTS = "ucfTrainTestlist"

# classInd.txt as distributed: the 101 classes in the order of the class ids (1..101 there)
CLASSES = """
ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch Basketball BasketballDunk
BenchPress Biking Billiards BlowDryHair BlowingCandles BodyWeightSquats Bowling BoxingPunchingBag BoxingSpeedBag
BreastStroke BrushingTeeth CleanAndJerk CliffDiving CricketBowling CricketShot CuttingInKitchen Diving Drumming Fencing
FieldHockeyPenalty FloorGymnastics FrisbeeCatch FrontCrawl GolfSwing Haircut Hammering HammerThrow HandstandPushups
HandstandWalking HeadMassage HighJump HorseRace HorseRiding HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack
JumpRope Kayaking Knitting LongJump Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars PizzaTossing
PlayingCello PlayingDaf PlayingDhol PlayingFlute PlayingGuitar PlayingPiano PlayingSitar PlayingTabla PlayingViolin
PoleVault PommelHorse PullUps Punch PushUps Rafting RockClimbingIndoor RopeClimbing Rowing SalsaSpin ShavingBeard
Shotput SkateBoarding Skiing Skijet SkyDiving SoccerJuggling SoccerPenalty StillRings SumoWrestling Surfing Swing
TableTennisShot TaiChi TennisSwing ThrowDiscus TrampolineJumping Typing UnevenBars VolleyballSpiking WalkingWithDog
WallPushups WritingOnBoard YoYo
""".split()

# the spelling of a class in its video files' names where it differs from classInd.txt's (v_HandStandPushups_g01_c01)
VIDEO_SPELLING = {"HandstandPushups": "HandStandPushups"}


def class_name(camel: str) -> str:
    """CamelCase as words: a space before each capital that follows a lower-case letter or digit
    (``ApplyEyeMakeup`` -> "Apply Eye Makeup"); underscores read as spaces (``Apply_Eye_Makeup`` -> the same)."""
    return " ".join(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", camel).replace("_", " ").split())


@dataclass(frozen=True)
class Ucf101Config:
    """UCF-101's official split."""

    split: int = setting(
        1,
        "UCF-101's official train/test split (1..3): ucfTrainTestlist/trainlist0N.txt and testlist0N.txt (CoOp and "
        "C3Box use 1)",
        between(1, 3),
    )


@register
class UCF101(DataSet):
    """UCF-101: 101 human actions, one middle frame a video, 9,537 training and 3,783 test images (official split 1)."""

    name = "ucf101"
    template = "a photo of a person doing {}."
    benchmarks = ("b0-inc10", "b50-inc10")  # on C3Box's 100 classes (101 do not divide by 10)
    obtain = (
        "put CoOp's UCF-101-midframes.zip (https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md#ucf101) and "
        "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip, both extracted, in data.root "
        "(UCF-101-midframes/ and ucfTrainTestlist/); C3Box's train/ and val/ folders of UCF-101 are read too"
    )

    @dataclass(frozen=True)
    class Config:
        ucf101: Ucf101Config = section(Ucf101Config)

    def load(self, data: DataConfig) -> BenchmarkData:
        root = self.locate(data, self._looks_right)
        folders = self.c3box_folders(root) if not (root / LISTS).is_dir() else None
        if folders is not None:
            return self._c3box(data, folders)
        return self._official(data, root)

    def c3box_names(self, official: Sequence[str]) -> list[str]:
        """C3Box's names: the CamelCase rule on the video files' spelling ("Hand Stand Pushups"; 100 of 100 match)."""
        respelled = {class_name(c): class_name(v) for c, v in VIDEO_SPELLING.items()}
        return [respelled.get(name, name) for name in official]

    # ---- the official layout ---------------------------------------------------------------------------------
    def _looks_right(self, path: Path) -> bool:
        return (path / LISTS / "classInd.txt").is_file() or self.c3box_folders(path) is not None

    def _official(self, data: DataConfig, root: Path) -> BenchmarkData:
        lists_dir, frames = root / LISTS, root / FRAMES
        classes = []
        for n, line in text_lines(lists_dir / "classInd.txt", "ucfTrainTestlist/ holds classInd.txt as distributed"):
            number, _, name = line.partition(" ")
            if number != str(len(classes) + 1) or not name.strip() or " " in name.strip():
                raise SecaError(
                    f"{lists_dir / 'classInd.txt'} line {n}: '{shown(line)}' is not '{len(classes) + 1} <ClassName>'"
                )
            classes.append(name.strip())
        keys = {spelling_key(c): k for k, c in enumerate(classes)}
        if len(keys) != len(classes):
            raise SecaError(f"{lists_dir / 'classInd.txt'} names a class twice")
        if not frames.is_dir():
            raise SecaError(f"{frames} is missing: {self.obtain}")
        folder_of: dict[int, Path] = {}
        for folder in sorted(p for p in frames.iterdir() if p.is_dir()):
            k = keys.get(spelling_key(folder.name))
            if k is not None:
                if k in folder_of:
                    raise SecaError(f"{folder_of[k].name} and {folder.name} in {frames} are one class; keep one")
                folder_of[k] = folder
        none = (
            f"{frames} holds none of the {len(classes)} class folders of classInd.txt (e.g. '{classes[0]}' or "
            f"'{'_'.join(class_name(classes[0]).split())}'); {self.obtain}"
        )
        number = data.ucf101.split

        def lacking(split: str, k: int) -> str:
            return (
                f"{folder_of[k]} holds none of the frames of the videos that {split}list0{number}.txt lists for it; "
                "add them or remove the folder"
            )

        lists = ((split, self._read_list(lists_dir / f"{split}list0{number}.txt", keys)) for split in ("train", "test"))
        found = listed_in_folders(lists, folder_of, none, lacking)
        split = f"official split {number} (trainlist0{number}/testlist0{number})"
        return lists_split(self, data, [class_name(c) for c in classes], found, split=split, what="listed videos")

    @staticmethod
    def _read_list(path: Path, keys: dict[str, int]) -> list[tuple[int, str]]:
        """``(class id, frame file name)`` of each line of a train or test list (``Class/v_Class_g08_c01.avi [id]``)."""
        what = "get UCF101TrainTestSplits-RecognitionTask.zip from https://www.crcv.ucf.edu/data/UCF101.php"
        entries = []
        for n, line in text_lines(path, what):
            fields = line.split()
            cls, _, video = fields[0].partition("/")
            if len(fields) > 2 or not video or "/" in video or not Path(video).stem:
                raise SecaError(f"{path} line {n}: '{shown(line)}' is not '<Class>/<video>.avi [class number]'")
            k = keys.get(spelling_key(cls))
            if k is None:
                raise SecaError(f"{path} line {n}: the class '{shown(cls)}' is not in classInd.txt")
            if len(fields) == 2 and fields[1] != str(k + 1):
                raise SecaError(f"{path} line {n}: the class number {shown(fields[1])} is not {cls}'s ({k + 1})")
            entries.append((k, Path(video).stem + ".jpg"))
        return entries

    # ---- C3Box's layout ---------------------------------------------------------------------------------------
    def _c3box(self, data: DataConfig, folders: tuple[Path, Path]) -> BenchmarkData:
        """C3Box's train/<class>/ and val/<class>/: the classes numbered in sorted folder order (ImageFolder's, so
        C3Box's class ids and labels.json line up), each folder matched to a class of classInd.txt whatever its
        spelling (``HandStandPushups``, ``Hand_Stand_Pushups``)."""
        official = [class_name(c) for c in CLASSES]
        unknown = "a UCF-101 class (classes such as 'ApplyEyeMakeup')"
        return c3box_matched(self, data, folders, CLASSES, official, unknown=unknown, note=self._c3box_note)

    def _c3box_note(self, ids: list[int]) -> str | None:
        """The line a run prints of C3Box's classes ``ids``: where ImageFolder's order is not classInd.txt's, which
        one the class ids follow."""
        if ids != sorted(ids):
            return (
                f"{self.name}: C3Box's folders hold {len(ids)} of its {len(CLASSES)} classes; using those, numbered "
                "in sorted folder order as C3Box numbers them (not classInd.txt's order: e.g. HammerThrow comes "
                "before Hammering)"
            )
        return self.subset_note(len(ids), len(CLASSES))
